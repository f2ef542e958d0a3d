import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createOrganization } from "@zigznote/database/testing";
import type { Redis } from "ioredis";
import request from "supertest";
import { apiKeyHeaderFor, authHeaderFor, signClerkToken } from "../support/auth";
import { testRedisUrl } from "../support/env";
import { createTestApp, type TestApp } from "../support/helpers";
import { captureLogs, LEVEL } from "../support/logCapture";
import { closeServer, listen } from "../support/recallEvents";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";

/**
 * Request budgets (src/http/rateLimit.ts) with real Redis: two instances of one deployment share
 * REDIS_KEY_PREFIX, so an organization's budget is one across them.
 */

const BUDGETS = {
  RATE_LIMIT_PER_MINUTE_FREE: "5",
  RATE_LIMIT_PER_MINUTE_PRO: "8",
  RATE_LIMIT_PER_MINUTE_BUSINESS: "50",
  RATE_LIMIT_PER_MINUTE_UNAUTHENTICATED: "3",
};

function redisOf(testApp: TestApp): Redis {
  return testApp.ctx.redis!;
}

async function redisReady(testApp: TestApp): Promise<void> {
  const redis = redisOf(testApp);
  if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
}

function parseRateLimit(value: string | undefined): { policy: string; r: number; t: number } {
  const match = /^"(\w+)";r=(\d+);t=(\d+)$/.exec(value ?? "");
  if (!match) throw new Error(`not a RateLimit field: ${value}`);
  return { policy: match[1]!, r: Number(match[2]), t: Number(match[3]) };
}

describe("request budgets across two instances sharing Redis", () => {
  let a: TestApp;
  let b: TestApp;
  let servers: Server[];

  beforeAll(async () => {
    const env = { ...BUDGETS, REDIS_KEY_PREFIX: `test-rl-${randomUUID()}`, TRUST_PROXY: "true" };
    a = createTestApp({ env, redis: true });
    b = createTestApp({ env, redis: true });
    await Promise.all([redisReady(a), redisReady(b)]);
    servers = [(await listen(a.app)).server, (await listen(b.app)).server];
  });
  afterAll(async () => {
    for (const server of servers) await closeServer(server);
    await a.close();
    await b.close();
  });

  it("draws every key and user of an organization on one budget, whatever instance answers", async () => {
    const user = await authHeaderFor(a, { role: "admin" });
    const key = await apiKeyHeaderFor(a, {
      scopes: ["meetings:read"],
      organizationId: user.organizationId,
    });
    const callers = [user.headers, key.headers];
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await request(servers[i % 2]!)
        .get("/api/v1/meetings")
        .set(callers[i % 2]!);
      expect(res.status).toBe(200);
      expect(res.headers["ratelimit-policy"]).toBe('"organization";q=5;w=60');
      const field = parseRateLimit(res.headers.ratelimit);
      expect(field.policy).toBe("organization");
      expect(field.t).toBeGreaterThanOrEqual(1);
      expect(field.t).toBeLessThanOrEqual(60);
      remaining.push(field.r);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);

    for (const [index, headers] of callers.entries()) {
      const refused = await request(servers[index]!).get("/api/v1/meetings").set(headers);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({
        code: "RATE_LIMITED",
        details: { policy: "organization", limit: 5, windowSeconds: 60 },
      });
      const retryAfter = Number(refused.headers["retry-after"]);
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(parseRateLimit(refused.headers.ratelimit)).toMatchObject({ r: 0, t: retryAfter });
    }
    const metrics = await a.ctx.metrics.registry.getSingleMetricAsString(
      "zigznote_rate_limited_total",
    );
    expect(metrics).toMatch(/zigznote_rate_limited_total\{subject="organization"\} [1-9]/);

    // Another organization, on either instance, has its own budget.
    const other = await authHeaderFor(a, { role: "member" });
    const theirs = await request(servers[1]!).get("/api/v1/meetings").set(other.headers);
    expect(theirs.status).toBe(200);
    expect(parseRateLimit(theirs.headers.ratelimit).r).toBe(4);
  });

  it("sizes the budget by the organization's plan", async () => {
    const organization = await createOrganization(a.ctx.db, { planSlug: "pro" });
    const caller = await authHeaderFor(a, { role: "admin", organizationId: organization.id });
    const res = await request(servers[0]!).get("/api/v1/me").set(caller.headers);
    expect(res.headers["ratelimit-policy"]).toBe('"organization";q=8;w=60');
    expect(parseRateLimit(res.headers.ratelimit).r).toBe(7);
  });

  it("carries the fields on error answers too, and counts them", async () => {
    const caller = await authHeaderFor(a, { role: "admin" });
    const missing = await request(servers[0]!)
      .get(`/api/v1/meetings/${randomUUID()}`)
      .set(caller.headers);
    expect(missing.status).toBe(404);
    expect(parseRateLimit(missing.headers.ratelimit).r).toBe(4);
    const invalid = await request(servers[1]!)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "" });
    expect(invalid.status).toBe(400);
    expect(parseRateLimit(invalid.headers.ratelimit).r).toBe(3);
  });

  it("limits requests without valid credentials per client address (behind TRUST_PROXY)", async () => {
    const address = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(servers[i % 2]!)
        .get("/api/v1/me")
        .set("X-Forwarded-For", address)
        .set("Authorization", "Bearer not-a-token");
      statuses.push(res.status);
      expect(res.headers["ratelimit-policy"]).toBe('"address";q=3;w=60');
      if (res.status === 429) {
        expect(res.body.error.code).toBe("RATE_LIMITED");
        expect(res.body.error.details.policy).toBe("address");
        // A wait, not a challenge: the 401 it replaces said how to authenticate.
        expect(res.headers["www-authenticate"]).toBeUndefined();
      } else {
        expect(res.headers["www-authenticate"]).toBe(
          'Bearer realm="zigznote", error="invalid_token"',
        );
      }
    }
    expect(statuses).toEqual([401, 401, 401, 429]);
    // Another address is not affected, and a valid caller from the spent address has its own.
    const elsewhere = await request(servers[0]!)
      .get("/api/v1/me")
      .set("X-Forwarded-For", "198.51.100.7")
      .set("Authorization", "Bearer not-a-token");
    expect(elsewhere.status).toBe(401);
    const caller = await authHeaderFor(a, { role: "admin" });
    const authenticated = await request(servers[0]!)
      .get("/api/v1/me")
      .set("X-Forwarded-For", address)
      .set(caller.headers);
    expect(authenticated.status).toBe(200);
    // A path no route has counts against the address too.
    const unknown = await request(servers[1]!)
      .get("/api/v1/nothing-here")
      .set("X-Forwarded-For", address);
    expect(unknown.status).toBe(429);
  });

  it("counts a known path called with another method (405) against the address, like an unknown path", async () => {
    const address = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    const remaining: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await request(servers[i % 2]!)
        .put("/api/v1/meetings")
        .set("X-Forwarded-For", address);
      expect([res.status, res.headers.allow]).toEqual([405, "POST, GET, HEAD"]);
      expect(res.headers["ratelimit-policy"]).toBe('"address";q=3;w=60');
      remaining.push(parseRateLimit(res.headers.ratelimit).r);
    }
    expect(remaining).toEqual([2, 1, 0]);
    const spent = await request(servers[0]!).delete("/api/v1/me").set("X-Forwarded-For", address);
    expect(spent.status).toBe(429);
    expect(spent.body.error.code).toBe("RATE_LIMITED");
  });

  it("does not count a platform admin's own requests", async () => {
    const admin = await authHeaderFor(a, { role: "admin" });
    const token = signClerkToken({
      userId: admin.userClerkId,
      orgId: admin.orgClerkId,
      orgRole: "org:admin",
      claims: { metadata: { platformAdmin: true } },
    });
    for (let i = 0; i < 7; i++) {
      const res = await request(servers[i % 2]!)
        .get("/api/v1/admin/overview")
        .set("Authorization", `Bearer ${token}`);
      expect(res.status).toBe(200);
      expect(res.headers.ratelimit).toBeUndefined();
      expect(res.headers["ratelimit-policy"]).toBeUndefined();
    }
    // Its organization's budget is untouched.
    const member = await authHeaderFor(a, { role: "member", organizationId: admin.organizationId });
    const res = await request(servers[0]!).get("/api/v1/me").set(member.headers);
    expect(parseRateLimit(res.headers.ratelimit).r).toBe(4);
  });

  it("exempts /health, /metrics, /docs, /openapi.json and the webhooks", async () => {
    const address = "192.0.2.44";
    for (let i = 0; i < 4; i++) {
      await request(servers[0]!)
        .get("/api/v1/me")
        .set("X-Forwarded-For", address)
        .set("Authorization", "Bearer spent");
    }
    for (const path of ["/health", "/metrics", "/docs/", "/openapi.json"]) {
      const res = await request(servers[0]!).get(path).set("X-Forwarded-For", address);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, res.headers.ratelimit]).toEqual([path, undefined]);
    }
    const webhook = await request(servers[1]!)
      .post("/webhooks/recall")
      .set("X-Forwarded-For", address)
      .set("Content-Type", "application/json")
      .send("{}");
    expect(webhook.status).not.toBe(429);
    expect(webhook.headers.ratelimit).toBeUndefined();
  });

  it("sends a cached API key's lockout check, revocation marker and count in one round trip", async () => {
    const key = await apiKeyHeaderFor(a, { scopes: ["meetings:read"] });
    // The first request reads the key's row; this instance caches it.
    expect((await request(servers[0]!).get("/api/v1/me").set(key.headers)).status).toBe(200);
    const redis = redisOf(a);
    const sent: { name: string; answersBefore: number }[] = [];
    let answers = 0;
    const original = redis.sendCommand.bind(redis);
    const spy = jest.spyOn(redis, "sendCommand").mockImplementation((command, stream) => {
      sent.push({ name: command.name, answersBefore: answers });
      const answered = () => {
        answers += 1;
      };
      command.promise.then(answered, answered);
      return original(command, stream);
    });
    let res: request.Response;
    try {
      res = await request(servers[0]!).get("/api/v1/me").set(key.headers);
    } finally {
      spy.mockRestore();
    }
    expect(res.status).toBe(200);
    expect(parseRateLimit(res.headers.ratelimit).r).toBe(3);
    // The lockout's two counters (each MULTI, GET, PTTL, EXEC), the revocation marker, the count.
    expect(sent.map(({ name }) => name).sort()).toEqual(
      [...Array(2).fill(["multi", "get", "pttl", "exec"]).flat(), "exists", "evalsha"].sort(),
    );
    // Every command left before the first answer came back.
    expect(sent.filter(({ answersBefore }) => answersBefore > 0)).toEqual([]);
  });

  it("gives a cached key's count back when another instance revoked the key", async () => {
    const admin = await authHeaderFor(a, { role: "admin" });
    const created = await request(servers[0]!)
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "revoked elsewhere", scopes: ["meetings:read"] });
    expect(created.status).toBe(201);
    const key = { Authorization: `Bearer ${created.body.key}` };
    // b caches the key; a revokes it.
    const onB = await request(servers[1]!).get("/api/v1/me").set(key);
    expect([onB.status, parseRateLimit(onB.headers.ratelimit).r]).toEqual([200, 3]);
    const revoked = await request(servers[0]!)
      .delete(`/api/v1/api-keys/${created.body.id}`)
      .set(admin.headers);
    expect([revoked.status, parseRateLimit(revoked.headers.ratelimit).r]).toEqual([200, 2]);
    const refused = await request(servers[1]!).get("/api/v1/me").set(key);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe("API_KEY_REVOKED");
    // The refused request counted against its address, not the organization.
    expect(parseRateLimit(refused.headers.ratelimit).policy).toBe("address");
    const after = await request(servers[0]!).get("/api/v1/me").set(admin.headers);
    expect(parseRateLimit(after.headers.ratelimit).r).toBe(1);
  });

  it("gives a cached key's count back when the lockout refuses it, right as it is", async () => {
    const env = {
      ...BUDGETS,
      RATE_LIMIT_PER_MINUTE_UNAUTHENTICATED: "100",
      API_KEY_MAX_FAILURES: "2",
      REDIS_KEY_PREFIX: `test-rl-${randomUUID()}`,
      TRUST_PROXY: "true",
    };
    const locking = createTestApp({ env, redis: true });
    try {
      await redisReady(locking);
      const { key, headers } = await apiKeyHeaderFor(locking, { scopes: ["meetings:read"] });
      const from = (address: string) => ({ ...headers, "X-Forwarded-For": address });
      const first = await request(locking.app).get("/api/v1/me").set(from("203.0.113.7"));
      expect([first.status, parseRateLimit(first.headers.ratelimit).r]).toEqual([200, 4]);
      // Two wrong secrets for the key's id from one address lock that pair.
      const wrong = `Bearer ${key.slice(0, -4)}AAAA`;
      for (let i = 0; i < 2; i++) {
        const res = await request(locking.app)
          .get("/api/v1/me")
          .set({ Authorization: wrong, "X-Forwarded-For": "198.51.100.9" });
        expect(res.status).toBe(401);
      }
      const locked = await request(locking.app).get("/api/v1/me").set(from("198.51.100.9"));
      expect(locked.status).toBe(429);
      expect(locked.body.error.code).not.toBe("RATE_LIMITED");
      expect(parseRateLimit(locked.headers.ratelimit).policy).toBe("address");
      // The organization's budget did not pay for the refused request.
      const next = await request(locking.app).get("/api/v1/me").set(from("203.0.113.7"));
      expect([next.status, parseRateLimit(next.headers.ratelimit).r]).toEqual([200, 3]);
    } finally {
      await locking.close();
    }
  });

  it("costs one Redis command per request, and no database query of its own", async () => {
    const caller = await authHeaderFor(a, { role: "admin" });
    await request(servers[0]!).get("/api/v1/me").set(caller.headers);
    const redis = redisOf(a);
    const sent: string[] = [];
    const original = redis.sendCommand.bind(redis);
    const spy = jest.spyOn(redis, "sendCommand").mockImplementation((command, stream) => {
      sent.push(command.name);
      return original(command, stream);
    });
    try {
      const res = await request(servers[0]!).get("/api/v1/me").set(caller.headers);
      expect(res.status).toBe(200);
    } finally {
      spy.mockRestore();
    }
    // A session request: the budget's count is its only Redis command.
    expect(sent).toHaveLength(1);
  });
});

describe("request budgets when Redis fails (fail open)", () => {
  let proxy: TcpProxy;
  let testApp: TestApp;
  let server: Server;
  const logs = captureLogs("warn");

  beforeAll(async () => {
    const url = new URL(testRedisUrl);
    proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
    testApp = createTestApp({
      env: { ...BUDGETS, REDIS_KEY_PREFIX: `test-rl-${randomUUID()}` },
      redis: proxy.urlFor(testRedisUrl),
      redisOfflineQueue: false,
      logger: logs.logger,
    });
    await redisReady(testApp);
    server = (await listen(testApp.app)).server;
  });
  afterAll(async () => {
    await closeServer(server);
    await proxy.close().catch(() => undefined);
    await testApp.close().catch(() => undefined);
  });

  async function storeErrors(): Promise<number> {
    const text = await testApp.ctx.metrics.registry.getSingleMetricAsString(
      "zigznote_rate_limit_store_errors_total",
    );
    return Number(/zigznote_rate_limit_store_errors_total (\d+)/.exec(text)?.[1] ?? 0);
  }

  it("serves requests when Redis stalls or goes away, with a warning and a metric", async () => {
    const caller = await authHeaderFor(testApp, { role: "admin" });
    const counted = await request(server).get("/api/v1/me").set(caller.headers);
    expect(parseRateLimit(counted.headers.ratelimit).r).toBe(4);

    // Redis stops answering: the first request waits for the store's timeout, then is served;
    // the connection that stopped answering is dropped, and the next requests are served at once
    // (each would wait 500 ms otherwise) until Redis answers again.
    proxy.pause();
    const first = Date.now();
    const stalled = await request(server).get("/api/v1/me").set(caller.headers);
    expect(stalled.status).toBe(200);
    expect(stalled.headers.ratelimit).toBeUndefined();
    expect(Date.now() - first).toBeLessThan(1500);
    const started = Date.now();
    for (let i = 0; i < 6; i++) {
      const res = await request(server).get("/api/v1/me").set(caller.headers);
      expect(res.status).toBe(200);
      expect(res.headers["ratelimit-policy"]).toBe('"organization";q=5;w=60');
      expect(res.headers.ratelimit).toBeUndefined();
    }
    expect(Date.now() - started).toBeLessThan(6 * 250);
    expect(await storeErrors()).toBe(7);

    // Redis answers again: within the reconnection's pace (2 s at most), requests are counted.
    proxy.resume();
    const resumed = Date.now();
    let isCounted = false;
    while (!isCounted && Date.now() - resumed < 10_000) {
      const res = await request(server).get("/api/v1/me").set(caller.headers);
      expect(res.status).toBe(200);
      isCounted = res.headers.ratelimit !== undefined;
      if (!isCounted) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(isCounted).toBe(true);
    const errorsBeforeGone = await storeErrors();

    // Redis is gone: served at once.
    await proxy.close();
    for (let i = 0; i < 3; i++) {
      const res = await request(server).get("/api/v1/me").set(caller.headers);
      expect(res.status).toBe(200);
    }
    expect(await storeErrors()).toBe(errorsBeforeGone + 3);
    const warnings = logs
      .entries()
      .filter((entry) => entry.level === LEVEL.warn && String(entry.msg).includes("not enforced"));
    // At most one warning a minute, however many requests went uncounted.
    expect(warnings).toHaveLength(1);
  });
});

describe("API keys when Redis fails", () => {
  it("serves a cached key's requests when Redis stalls or goes away: nothing waits on it", async () => {
    const url = new URL(testRedisUrl);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
    const testApp = createTestApp({
      env: { ...BUDGETS, REDIS_KEY_PREFIX: `test-rl-${randomUUID()}` },
      redis: proxy.urlFor(testRedisUrl),
      redisOfflineQueue: false,
    });
    try {
      await redisReady(testApp);
      const { headers } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
      expect((await request(testApp.app).get("/api/v1/me").set(headers)).status).toBe(200);

      // Redis holds every command: the lockout's check, the revocation marker and the count
      // each give up after the command timeout, and the request is served.
      proxy.pause();
      const started = Date.now();
      const stalled = await request(testApp.app).get("/api/v1/me").set(headers).timeout(5000);
      expect(stalled.status).toBe(200);
      expect(stalled.headers.ratelimit).toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1500);
      // The stalled connection is set aside: the next requests wait for nothing, a refused key's
      // included (its lockout check, its failure count and its address's budget).
      const next = Date.now();
      for (let i = 0; i < 3; i++) {
        expect((await request(testApp.app).get("/api/v1/me").set(headers)).status).toBe(200);
      }
      const refused = await request(testApp.app)
        .get("/api/v1/me")
        .set({ Authorization: `${headers.Authorization.slice(0, -4)}xxxx` });
      expect(refused.status).toBe(401);
      expect(Date.now() - next).toBeLessThan(4 * 250);

      // Redis is gone: served too (the key's row read from the database).
      await proxy.close();
      const gone = await request(testApp.app).get("/api/v1/me").set(headers).timeout(5000);
      expect(gone.status).toBe(200);
    } finally {
      await proxy.close().catch(() => undefined);
      await testApp.close().catch(() => undefined);
    }
  });
});

describe("request budgets in memory (no Redis)", () => {
  it("limits within the instance and answers 429 with Retry-After", async () => {
    const testApp = createTestApp({ env: BUDGETS });
    try {
      const caller = await authHeaderFor(testApp, { role: "admin" });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        statuses.push((await request(testApp.app).get("/api/v1/me").set(caller.headers)).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    } finally {
      await testApp.close();
    }
  });

  it("answers a locked-out key with the lockout's wait when its address's budget is spent too", async () => {
    const testApp = createTestApp({
      env: { ...BUDGETS, API_KEY_MAX_FAILURES: "2", TRUST_PROXY: "true" },
    });
    try {
      const { key, headers } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
      const from = { "X-Forwarded-For": "198.51.100.23" };
      const wrong = { ...from, Authorization: `Bearer ${key.slice(0, -4)}AAAA` };
      for (let i = 0; i < 2; i++) {
        expect((await request(testApp.app).get("/api/v1/me").set(wrong)).status).toBe(401);
      }
      // The pair is locked for 15 minutes; the third and fourth refusals spend the address's
      // budget of 3 and go past it. The answer's wait is still the lockout's: a client that
      // retried after the budget's minute would only be refused again.
      for (let i = 0; i < 2; i++) {
        const locked = await request(testApp.app)
          .get("/api/v1/me")
          .set({ ...headers, ...from });
        expect(locked.status).toBe(429);
        expect(locked.body.error.code).toBe("TOO_MANY_REQUESTS");
        expect(Number(locked.headers["retry-after"])).toBeGreaterThan(800);
        expect(parseRateLimit(locked.headers.ratelimit)).toMatchObject({ policy: "address", r: 0 });
        expect(locked.headers["www-authenticate"]).toBeUndefined();
      }
    } finally {
      await testApp.close();
    }
  });

  it("answers a 429 that replaces a refused credential's 401 without its WWW-Authenticate", async () => {
    const testApp = createTestApp({ env: { ...BUDGETS, TRUST_PROXY: "true" } });
    try {
      const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
      const expired = signClerkToken({
        userId: `user_${randomUUID()}`,
        orgId: `org_${randomUUID()}`,
        issuedAt: new Date(Date.now() - 3_600_000),
      });
      // Every way a request can fail authentication, each from its own address.
      const refusals: [string, Record<string, string>][] = [
        ["no credentials", {}],
        ["a wrong API key", { Authorization: `Bearer ${key.slice(0, -4)}AAAA` }],
        ["a malformed API key", { Authorization: "Bearer zn_live_bad" }],
        ["a token that is no session token", { Authorization: "Bearer not-a-token" }],
        ["an expired session token", { Authorization: `Bearer ${expired}` }],
        ["a bad session cookie", { Cookie: "__session=not-a-token" }],
      ];
      const answers: { name: string; status: number; code: string; challenge?: string }[] = [];
      for (const [index, [name, credentials]] of refusals.entries()) {
        const headers = { ...credentials, "X-Forwarded-For": `198.51.100.${120 + index}` };
        // The address's budget of 3: each refusal is a 401 that says how to authenticate.
        for (let i = 0; i < 3; i++) {
          const refused = await request(testApp.app).get("/api/v1/me").set(headers);
          expect({ name, status: refused.status }).toEqual({ name, status: 401 });
          expect(refused.headers["www-authenticate"]).toMatch(/^Bearer realm="zigznote"/);
        }
        // Past it the answer is the budget's 429: the client must wait, not authenticate.
        const limited = await request(testApp.app).get("/api/v1/me").set(headers);
        expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
        answers.push({
          name,
          status: limited.status,
          code: limited.body.error.code,
          challenge: limited.headers["www-authenticate"],
        });
      }
      expect(answers).toEqual(
        refusals.map(([name]) => ({
          name,
          status: 429,
          code: "RATE_LIMITED",
          challenge: undefined,
        })),
      );
    } finally {
      await testApp.close();
    }
  });

  describe("with fewer counters in memory than callers (API_KEY_LOCKOUT_MAX_ENTRIES)", () => {
    // Each kind of counter (organizations' budgets, addresses' budgets) has its own store of at
    // most API_KEY_LOCKOUT_MAX_ENTRIES: a flood of one kind evicts only its own kind.
    const cap = 4;
    let testApp: TestApp;
    beforeEach(() => {
      testApp = createTestApp({
        env: { ...BUDGETS, TRUST_PROXY: "true", API_KEY_LOCKOUT_MAX_ENTRIES: String(cap) },
      });
    });
    afterEach(() => testApp.close());
    const me = (headers: Record<string, string>) =>
      request(testApp.app).get("/api/v1/me").set(headers);

    it("keeps an organization's count through a flood of more addresses than the cap", async () => {
      const caller = await authHeaderFor(testApp, { role: "admin" });
      for (const expected of [4, 3]) {
        expect(parseRateLimit((await me(caller.headers)).headers.ratelimit).r).toBe(expected);
      }
      // Unauthenticated requests from many addresses: cheap for an attacker.
      for (let i = 0; i < cap * 3; i++) {
        const res = await me({
          Authorization: "Bearer not-a-token",
          "X-Forwarded-For": `192.0.2.${i + 1}`,
        });
        expect([res.status, parseRateLimit(res.headers.ratelimit).r]).toEqual([401, 2]);
      }
      const after = await me(caller.headers);
      expect([after.status, parseRateLimit(after.headers.ratelimit).r]).toEqual([200, 2]);
    });

    it("keeps a spent address refused while more organizations than the cap are counted", async () => {
      const spent = { Authorization: "Bearer not-a-token", "X-Forwarded-For": "198.51.100.200" };
      for (let i = 0; i < 3; i++) expect((await me(spent)).status).toBe(401);
      for (let i = 0; i < cap * 2; i++) {
        const other = await authHeaderFor(testApp, { role: "member" });
        expect((await me(other.headers)).status).toBe(200);
      }
      const refused = await me(spent);
      expect([refused.status, refused.body.error.code]).toEqual([429, "RATE_LIMITED"]);
    });
  });

  it("is off with RATE_LIMIT_ENABLED=false: no count, no fields", async () => {
    const testApp = createTestApp({ env: { ...BUDGETS, RATE_LIMIT_ENABLED: "false" } });
    try {
      const caller = await authHeaderFor(testApp, { role: "admin" });
      for (let i = 0; i < 7; i++) {
        const res = await request(testApp.app).get("/api/v1/me").set(caller.headers);
        expect(res.status).toBe(200);
        expect(res.headers["ratelimit-policy"]).toBeUndefined();
      }
    } finally {
      await testApp.close();
    }
  });
});
