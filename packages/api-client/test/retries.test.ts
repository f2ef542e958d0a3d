/**
 * The typed client's retries against the real API: the app of apps/api (its build), on a
 * PostgreSQL database of its own (`<TEST_DATABASE_URL>_client`) and real Redis, with the local
 * Recall fake of apps/api's tests. Answers are lost on the way back by a TCP proxy in this
 * process (the write happened, the client saw a network error), Recall is made slow or failing,
 * and request budgets are spent for real.
 */
import assert from "node:assert/strict";
import http, { type Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { createApp } from "@zigznote/api/dist/app.js";
import { loadConfig } from "@zigznote/api/dist/config.js";
import { buildContext, type AppContext } from "@zigznote/api/dist/context.js";
import { createApiKey } from "@zigznote/api/dist/identity/index.js";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { createMeeting, createOrganization, prepareTestDatabase } from "@zigznote/database/testing";
import { Redis } from "ioredis";
import {
  startFakeRecall,
  type FakeRecall,
} from "../../../apps/api/test/support/fakes/recallServer";
import { createApiClient, isApiErrorBody, retryAfterMs, type ApiClient } from "../src/index";

const databaseUrl = (() => {
  const url = new URL(
    process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_test",
  );
  url.pathname = `${url.pathname}_client`;
  return url.toString();
})();
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const keyPrefix = `test-client-${process.pid}-${Date.now()}`;

/**
 * A TCP proxy to the API that can lose answers: the request reaches the API whole, and the
 * connection is cut when the answer's first bytes come back, or once its headers and the first
 * byte of its body have passed.
 */
interface LossyProxy {
  url: string;
  loseNextAnswers(count: number): void;
  cutNextAnswersAfterHeaders(count: number): void;
  close(): Promise<void>;
}

async function startLossyProxy(port: number): Promise<LossyProxy> {
  let toLose = 0;
  let toCut = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream);
    let isCutting = false;
    let received = Buffer.alloc(0);
    upstream.on("data", (chunk: Buffer) => {
      if (toLose > 0) {
        toLose -= 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      if (toCut > 0 && !isCutting) {
        toCut -= 1;
        isCutting = true;
      }
      if (isCutting) {
        received = Buffer.concat([received, chunk]);
        const headersEnd = received.indexOf("\r\n\r\n");
        if (headersEnd === -1) return;
        client.write(received.subarray(0, headersEnd + 5), () => {
          client.destroy();
          upstream.destroy();
        });
        return;
      }
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    loseNextAnswers(count) {
      toLose = count;
    },
    cutNextAnswersAfterHeaders(count) {
      toCut = count;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let db: PrismaClient;
let redis: Redis;
let recall: FakeRecall;
let ctx: AppContext;
let server: Server;
let proxy: LossyProxy;
let organizationId: string;
let apiKey: string;
/** Every request the client sent, as the API-facing fetch saw it. */
let sent: Request[];

function client(options: Parameters<typeof createApiClient>[0] = {}): ApiClient {
  return createApiClient({
    baseUrl: proxy.url,
    headers: { Authorization: `Bearer ${apiKey}` },
    fetch: (request) => {
      sent.push(request);
      return fetch(request);
    },
    ...options,
    retry: options.retry === false ? false : { minDelayMs: 10, maxDelayMs: 50, ...options.retry },
  });
}

before(async () => {
  await prepareTestDatabase(databaseUrl);
  db = createPrismaClient(databaseUrl, { maxConnections: 10 });
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  recall = await startFakeRecall();
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: databaseUrl,
    JOBS_ENABLED: "false",
    REDIS_KEY_PREFIX: keyPrefix,
    RATE_LIMIT_PER_MINUTE_FREE: "20",
    RECALL_API_BASE_URL: recall.baseUrl,
    RECALL_API_KEY: recall.apiKey,
    RECALL_MAX_RETRIES: "0",
  });
  ctx = buildContext({ config, db, redis });
  server = await new Promise<Server>((resolve) => {
    const listening = createApp(ctx).listen(0, "127.0.0.1", () => resolve(listening));
  });
  proxy = await startLossyProxy((server.address() as AddressInfo).port);
});
after(async () => {
  await proxy.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await recall.close();
  await redis.quit();
  await db.$disconnect();
});
beforeEach(async () => {
  sent = [];
  recall.reset();
  recall.setLatency(0);
  // Each test acts for an organization of its own, with its own budget.
  organizationId = (await createOrganization(db)).id;
  apiKey = (
    await createApiKey(
      { db },
      {
        organizationId,
        name: "client test",
        scopes: ["meetings:read", "meetings:write", "bots:read", "bots:write"],
      },
    )
  ).plainKey;
});

const meetingBody = () => ({
  title: `Sync ${Math.random()}`,
  meetingUrl: `https://zoom.us/j/${String(Date.now()).slice(-8)}${Math.floor(Math.random() * 900 + 100)}`,
});

void describe("createApiClient retries against the real API", () => {
  void it("gives every write an Idempotency-Key, the same on each retry; reads get none", async () => {
    const api = client();
    const created = await api.POST("/api/v1/meetings", { body: meetingBody() });
    assert.equal(created.response.status, 201);
    await api.GET("/api/v1/meetings");
    const [write, read] = sent;
    assert.match(write!.headers.get("idempotency-key") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(read!.headers.get("idempotency-key"), null);
  });

  void it("retries a write whose answer was lost, and gets the first answer: one meeting", async () => {
    const api = client();
    const body = meetingBody();
    proxy.loseNextAnswers(1);
    const created = await api.POST("/api/v1/meetings", { body });
    assert.equal(created.response.status, 201);
    assert.equal(created.response.headers.get("idempotent-replayed"), "true");
    assert.equal(sent.length, 2);
    assert.equal(sent[0]!.headers.get("idempotency-key"), sent[1]!.headers.get("idempotency-key"));
    assert.equal(await db.meeting.count({ where: { organizationId, title: body.title } }), 1);
    assert.equal(
      created.data?.id,
      (await db.meeting.findFirstOrThrow({ where: { title: body.title } })).id,
    );
  });

  void it("retries a read after a network error", async () => {
    const api = client();
    proxy.loseNextAnswers(2);
    const listed = await api.GET("/api/v1/meetings");
    assert.equal(listed.response.status, 200);
    assert.equal(sent.length, 3);
  });

  void it("retries a 5xx: the API stored nothing, so the retry creates the bot", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.failNext({ status: 400, body: { detail: "Recall refuses once" } });
    const api = client();
    const bot = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(bot.response.status, 201);
    assert.equal(bot.response.headers.get("idempotent-replayed"), null);
    assert.equal(sent.length, 2);
    assert.equal(recall.createdBots().length, 1);
  });

  void it("waits out 409 IDEMPOTENCY_KEY_IN_USE (Retry-After) and gets the running request's answer", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.setLatency(1_500);
    const key = `bot-${meeting.id}`;
    const delays: number[] = [];
    const first = client().POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id }, header: { "Idempotency-Key": key } },
      body: {},
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await client({
      retry: {
        sleep: (ms) => {
          delays.push(ms);
          return new Promise((resolve) => setTimeout(resolve, ms));
        },
      },
    }).POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id }, header: { "Idempotency-Key": key } },
      body: {},
    });
    const done = await first;
    assert.equal(done.response.status, 201);
    assert.equal(second.response.status, 201);
    assert.equal(second.response.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(second.data, done.data);
    assert.ok(delays.length >= 1);
    // Retry-After: 1, plus a jitter below the backoff's cap (maxDelayMs: 50).
    assert.ok(
      delays.every((ms) => ms >= 1_000 && ms < 1_050),
      `waited ${delays.join(", ")} ms`,
    );
    assert.equal(recall.requestsTo("POST", "/api/v1/bot/").length, 1);
  });

  void it("waits Retry-After on 429 RATE_LIMITED, then succeeds once the budget resets", async () => {
    const delays: number[] = [];
    const api = client({
      retry: {
        sleep: async (ms) => {
          delays.push(ms);
          // The window ends: the organization's counter is gone.
          await redis.del(`${keyPrefix}:ratelimit:organization:${organizationId}`);
        },
      },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await api.GET("/api/v1/me")).response.status);
    assert.ok(statuses.every((status) => status === 200));
    const spent = await api.GET("/api/v1/me");
    assert.equal(spent.response.status, 200);
    assert.equal(delays.length, 1);
    assert.equal(sent.length, 22);
    assert.ok(delays[0]! >= 1_000 && delays[0]! <= 60_050, `waited ${delays[0]} ms`);
  });

  void it("gives up after the configured retries and returns the last answer", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.failNext({ status: 400 }, { times: 10 });
    const api = client({ retry: { retries: 2 } });
    const bot = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(bot.response.status, 502);
    assert.equal(bot.error?.error.code, "RECALL_REJECTED");
    assert.equal(sent.length, 3);
  });

  void it("does not retry other 4xx, nor anything with retry: false", async () => {
    const api = client();
    const missing = await api.GET("/api/v1/meetings/{id}", {
      params: { path: { id: "8b7e4c1a-6f0e-4d6b-9d33-1f6c1c0e2a10" } },
    });
    assert.equal(missing.response.status, 404);
    assert.equal(sent.length, 1);
    sent = [];
    const once = client({ retry: false });
    proxy.loseNextAnswers(1);
    await assert.rejects(once.GET("/api/v1/meetings"));
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.headers.get("idempotency-key"), null);
  });

  void it("retries a write whose answer was cut off after its headers, with its key: one meeting", async () => {
    const api = client();
    const body = meetingBody();
    proxy.cutNextAnswersAfterHeaders(1);
    const created = await api.POST("/api/v1/meetings", { body });
    assert.equal(created.response.status, 201);
    assert.equal(created.response.headers.get("idempotent-replayed"), "true");
    assert.equal(sent.length, 2);
    assert.equal(sent[0]!.headers.get("idempotency-key"), sent[1]!.headers.get("idempotency-key"));
    assert.equal(await db.meeting.count({ where: { organizationId, title: body.title } }), 1);
    assert.equal(
      created.data?.id,
      (await db.meeting.findFirstOrThrow({ where: { title: body.title } })).id,
    );
  });

  void it("spreads the waits of clients told the same Retry-After (no thundering herd)", async () => {
    const spend = client({ retry: false });
    for (let i = 0; i < 20; i++) await spend.GET("/api/v1/me");
    const count = 5;
    const asked: number[] = [];
    const waited: number[] = [];
    let allWaiting: () => void = () => undefined;
    const barrier = new Promise<void>((resolve) => (allWaiting = resolve));
    const clients = Array.from({ length: count }, (_, i) =>
      client({
        fetch: async (request) => {
          sent.push(request);
          const response = await fetch(request);
          if (response.status === 429) asked[i] = Number(response.headers.get("retry-after"));
          return response;
        },
        retry: {
          sleep: async (ms) => {
            waited[i] = ms;
            if (waited.filter((value) => value !== undefined).length === count) allWaiting();
            await barrier;
            // The window ends: the organization's counter is gone.
            await redis.del(`${keyPrefix}:ratelimit:organization:${organizationId}`);
          },
        },
      }),
    );
    const answers = await Promise.all(clients.map((api) => api.GET("/api/v1/me")));
    assert.deepEqual(
      answers.map((answer) => answer.response.status),
      Array<number>(count).fill(200),
    );
    for (let i = 0; i < count; i++) {
      assert.ok(asked[i]! >= 1, `told ${asked[i]} s`);
      // Retry-After, plus a jitter below the backoff's cap (maxDelayMs: 50).
      assert.ok(
        waited[i]! > asked[i]! * 1_000 && waited[i]! < asked[i]! * 1_000 + 50,
        `told ${asked[i]} s, waited ${waited[i]} ms`,
      );
    }
    assert.equal(new Set(waited).size, count, `waited ${waited.join(", ")} ms`);
  });

  void it("returns a Retry-After above maxRetryAfterMs at once, with the API's code, request id and details", async () => {
    const spend = client({ retry: false });
    for (let i = 0; i < 20; i++) await spend.GET("/api/v1/me");
    const started = Date.now();
    const spent = await client({ retry: { maxRetryAfterMs: 500 } }).GET("/api/v1/me");
    assert.ok(Date.now() - started < 1_000);
    assert.equal(spent.response.status, 429);
    assert.ok(Number(spent.response.headers.get("retry-after")) >= 1);
    assert.equal(sent.length, 21);
    assert.ok(isApiErrorBody(spent.error));
    assert.equal(spent.error.error.code, "RATE_LIMITED");
    assert.deepEqual(spent.error.error.details, {
      policy: "organization",
      limit: 20,
      windowSeconds: 60,
      retryAfterSeconds: Number(spent.response.headers.get("retry-after")),
    });
    assert.equal(spent.error.requestId, spent.response.headers.get("x-request-id"));
    assert.match(spent.error.requestId ?? "", /./);
  });

  void it("stops waiting out Retry-After when the caller's signal aborts", async () => {
    const spend = client({ retry: false });
    for (let i = 0; i < 20; i++) await spend.GET("/api/v1/me");
    const started = Date.now();
    await assert.rejects(
      client({ retry: { maxRetryAfterMs: 120_000 } }).GET("/api/v1/me", {
        signal: AbortSignal.timeout(300),
      }),
      { name: "TimeoutError" },
    );
    assert.ok(Date.now() - started < 1_000, `aborted after ${Date.now() - started} ms`);
    assert.equal(sent.length, 21);
  });

  void it("sends 400, 401, 409 (not IN_USE) and 422 IDEMPOTENCY_KEY_REUSED once", async () => {
    const api = client();
    const meeting = await createMeeting(db, { organizationId });
    const invalid = await api.POST("/api/v1/meetings", {
      body: { title: "", meetingUrl: "not a url" },
    });
    assert.equal(invalid.response.status, 400);
    assert.equal(sent.length, 1);

    const key = `reused-${meeting.id}`;
    const first = await api.POST("/api/v1/meetings", {
      params: { header: { "Idempotency-Key": key } },
      body: meetingBody(),
    });
    assert.equal(first.response.status, 201);
    const reused = await api.POST("/api/v1/meetings", {
      params: { header: { "Idempotency-Key": key } },
      body: meetingBody(),
    });
    assert.equal(reused.response.status, 422);
    assert.equal(reused.error?.error.code, "IDEMPOTENCY_KEY_REUSED");
    assert.equal(sent.length, 3);

    const bot = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(bot.response.status, 201);
    const again = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(again.response.status, 409);
    assert.notEqual(again.error?.error.code, "IDEMPOTENCY_KEY_IN_USE");
    assert.equal(sent.length, 5);
    // Two calls, two keys.
    assert.notEqual(
      sent[3]!.headers.get("idempotency-key"),
      sent[4]!.headers.get("idempotency-key"),
    );

    const unauthorized = await client({ headers: { Authorization: "Bearer not-a-token" } }).GET(
      "/api/v1/me",
    );
    assert.equal(unauthorized.response.status, 401);
    assert.equal(sent.length, 6);
  });
});

/** An HTTP server of the test's own: `handle` answers each request (or never does). */
async function startServer(
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

void describe("createApiClient against servers of the test's own", () => {
  void it("aborts an attempt after timeoutMs, retries it with the write's key, then throws TimeoutError", async () => {
    const keys: unknown[] = [];
    let closed = 0;
    const hung = await startServer((req) => {
      keys.push(req.headers["idempotency-key"]);
      req.socket.on("close", () => (closed += 1));
    });
    try {
      const api = createApiClient({
        baseUrl: hung.url,
        retry: { retries: 2, timeoutMs: 200, minDelayMs: 10, maxDelayMs: 50 },
      });
      const started = Date.now();
      await assert.rejects(
        api.POST("/api/v1/meetings", {
          body: meetingBody(),
          // A safety net: without attempt timeouts the call would hang until this.
          signal: AbortSignal.timeout(3_000),
        }),
        { name: "TimeoutError", message: /timed out after 200 ms/ },
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 600 && elapsed < 2_000, `gave up after ${elapsed} ms`);
      assert.equal(keys.length, 3);
      assert.match(String(keys[0]), /^[0-9a-f-]{36}$/);
      assert.ok(keys.every((key) => key === keys[0]));
      // Each timed-out attempt was aborted: its connection closed, not left waiting.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(closed, 3);
    } finally {
      await hung.close();
    }
  });

  void it("backs off on a Retry-After it cannot read instead of retrying at once", async () => {
    const answers = ["-1", "1.5", "soon"];
    const local = await startServer((_req, res) => {
      const retryAfter = answers.shift();
      if (retryAfter === undefined) {
        res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
        return;
      }
      res.writeHead(503, { "Retry-After": retryAfter, "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: { code: "UNAVAILABLE", message: "later" } }));
    });
    try {
      const delays: number[] = [];
      const api = createApiClient({
        baseUrl: local.url,
        retry: {
          minDelayMs: 100,
          maxDelayMs: 100,
          sleep: (ms) => {
            delays.push(ms);
            return Promise.resolve();
          },
        },
      });
      const answer = await api.GET("/api/v1/me");
      assert.equal(answer.response.status, 200);
      assert.equal(delays.length, 3);
      assert.ok(
        delays.every((ms) => ms > 0 && ms < 100),
        `waited ${delays.join(", ")} ms`,
      );
    } finally {
      await local.close();
    }
  });

  void it("reads Retry-After as seconds or an HTTP date in its three forms, and nothing else", () => {
    const now = Date.parse("1994-11-06T08:49:30Z");
    assert.equal(retryAfterMs("7", now), 7_000);
    assert.equal(retryAfterMs(" 7 ", now), 7_000);
    assert.equal(retryAfterMs("Sun, 06 Nov 1994 08:49:37 GMT", now), 7_000);
    assert.equal(retryAfterMs("Sunday, 06-Nov-94 08:49:37 GMT", now), 7_000);
    assert.equal(retryAfterMs("Sun Nov  6 08:49:37 1994", now), 7_000);
    assert.equal(retryAfterMs("Sun, 06 Nov 1994 08:49:00 GMT", now), 0);
    for (const unreadable of [null, "", "-1", "1.5", "1e3", "soon", "Sunday"]) {
      assert.equal(retryAfterMs(unreadable, now), null, String(unreadable));
    }
  });
});
