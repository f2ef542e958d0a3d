import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { formatApiKey } from "../../src/identity/apiKeyService";
import { apiKeyHeaderFor } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

const opened: TestApp[] = [];
function open(env: Record<string, string> = {}, redis = false): TestApp {
  const testApp = createTestApp({ env, redis });
  opened.push(testApp);
  return testApp;
}
afterAll(() => Promise.all(opened.map((testApp) => testApp.close())));

/** A well-formed key (valid checksum) for `keyId` with a secret that is not the real one. */
const wrongKeyFor = (key: string) => formatApiKey(key.slice(8, 20), "0".repeat(32));
const randomKeyId = () =>
  uniqueSuffix()
    .padEnd(12, "0")
    .slice(0, 12)
    .replace(/[^0-9a-z]/g, "0");

function attempt(testApp: TestApp, key: string, forwardedFor?: string) {
  const req = request(testApp.app).get("/api/v1/me").set("Authorization", `Bearer ${key}`);
  return forwardedFor ? req.set("X-Forwarded-For", forwardedFor) : req;
}

describe("API key brute-force protection", () => {
  it("locks the (IP, key) pair after 10 failures: the 11th attempt, even right, gets 429", async () => {
    const testApp = open({ TRUST_PROXY: "loopback" });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const ip = "203.0.113.10";
    for (let i = 0; i < 10; i++) {
      const res = await attempt(testApp, wrongKeyFor(key), ip);
      expect(res.status).toBe(401);
      expect(res.headers["www-authenticate"]).toBe(
        'Bearer realm="zigznote", error="invalid_token"',
      );
    }
    const locked = await attempt(testApp, key, ip);
    expect(locked.status).toBe(429);
    expect(locked.body.error.code).toBe("TOO_MANY_REQUESTS");
    // The client must wait, not authenticate again: a 429 is no challenge.
    expect(locked.headers["www-authenticate"]).toBeUndefined();
    // Nor is the lockout's answer to a wrong key, which would have been a 401 before it.
    const lockedWrong = await attempt(testApp, wrongKeyFor(key), ip);
    expect([lockedWrong.status, lockedWrong.headers["www-authenticate"]]).toEqual([429, undefined]);
    const retryAfter = Number(locked.headers["retry-after"]);
    expect(retryAfter).toBeGreaterThan(890);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(locked.body.error.details.retryAfterSeconds).toBe(retryAfter);

    // Another address is not locked out of the same key.
    expect((await attempt(testApp, key, "203.0.113.11")).status).toBe(200);
  });

  it("counts every failure kind (malformed, unknown, revoked, expired) against the pair", async () => {
    // The test edits the key row behind the API's back: no cached copy may hide the edits.
    const testApp = open({
      TRUST_PROXY: "loopback",
      API_KEY_MAX_FAILURES: "4",
      API_KEY_CACHE_SECONDS: "0",
    });
    const { key, organizationId } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const keyId = key.slice(8, 20);
    const ip = "203.0.113.20";
    const malformed = `zn_live_${keyId}_tooShort`;
    const unknown = formatApiKey(keyId, "1".repeat(32)); // wrong secret for this id
    expect((await attempt(testApp, malformed, ip)).body.error.code).toBe("INVALID_API_KEY");
    expect((await attempt(testApp, unknown, ip)).body.error.code).toBe("INVALID_API_KEY");
    await testApp.ctx.db.apiKey.updateMany({
      where: { prefix: keyId },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect((await attempt(testApp, key, ip)).body.error.code).toBe("API_KEY_EXPIRED");
    await testApp.ctx.db.apiKey.updateMany({
      where: { prefix: keyId },
      data: { expiresAt: null, revokedAt: new Date() },
    });
    expect((await attempt(testApp, key, ip)).body.error.code).toBe("API_KEY_REVOKED");
    await testApp.ctx.db.apiKey.updateMany({ where: { prefix: keyId }, data: { revokedAt: null } });
    expect((await attempt(testApp, key, ip)).status).toBe(429);
    expect(organizationId).toBeDefined();
  });

  it("resets the pair on success", async () => {
    const testApp = open({ TRUST_PROXY: "loopback", API_KEY_MAX_FAILURES: "3" });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const ip = "203.0.113.30";
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++)
        expect((await attempt(testApp, wrongKeyFor(key), ip)).status).toBe(401);
      expect((await attempt(testApp, key, ip)).status).toBe(200);
    }
  });

  it("trips the per-IP cap when the key id changes on every try", async () => {
    const testApp = open({ TRUST_PROXY: "loopback", API_KEY_IP_MAX_FAILURES: "5" });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const ip = "203.0.113.40";
    for (let i = 0; i < 5; i++) {
      expect((await attempt(testApp, formatApiKey(randomKeyId(), "2".repeat(32)), ip)).status).toBe(
        401,
      );
    }
    const locked = await attempt(testApp, key, ip);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers["retry-after"])).toBeGreaterThan(890);
    expect((await attempt(testApp, key, "203.0.113.41")).status).toBe(200);
  });

  it("frees the pair again after the lockout", async () => {
    const testApp = open({
      TRUST_PROXY: "loopback",
      API_KEY_MAX_FAILURES: "2",
      API_KEY_LOCKOUT_SECONDS: "1",
      API_KEY_FAILURE_WINDOW_SECONDS: "1",
    });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const ip = "203.0.113.50";
    await attempt(testApp, wrongKeyFor(key), ip);
    await attempt(testApp, wrongKeyFor(key), ip);
    const locked = await attempt(testApp, key, ip);
    expect(locked.status).toBe(429);
    expect(locked.headers["retry-after"]).toBe("1");
    // rate-limiter-flexible keeps time with the system clock: wait out the 1 s lockout.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await attempt(testApp, key, ip)).status).toBe(200);
  });

  it("enforces one lockout across two instances sharing Redis", async () => {
    const shared = { TRUST_PROXY: "loopback", REDIS_KEY_PREFIX: `test-${uniqueSuffix()}` };
    const a = open(shared, true);
    const b = open(shared, true);
    const { key } = await apiKeyHeaderFor(a, { scopes: ["meetings:read"] });
    const ip = "203.0.113.60";
    for (let i = 0; i < 10; i++) {
      const instance = i % 2 === 0 ? a : b;
      expect((await attempt(instance, wrongKeyFor(key), ip)).status).toBe(401);
    }
    const onA = await attempt(a, key, ip);
    const onB = await attempt(b, key, ip);
    expect(onA.status).toBe(429);
    expect(onB.status).toBe(429);
    expect(Number(onB.headers["retry-after"])).toBeGreaterThan(890);
    expect([onA.headers["www-authenticate"], onB.headers["www-authenticate"]]).toEqual([
      undefined,
      undefined,
    ]);
    const keys = await a.ctx.redis!.keys(`${shared.REDIS_KEY_PREFIX}:*`);
    expect(keys.length).toBeGreaterThan(0);
    // A third instance with its own (in-memory) counters would not know: Redis is what shares.
    const solo = open({ TRUST_PROXY: "loopback" });
    expect((await attempt(solo, key, ip)).status).toBe(200);
  });

  it("ignores a spoofed X-Forwarded-For without a trusted proxy", async () => {
    const testApp = open({ API_KEY_MAX_FAILURES: "3" });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    // Each attempt claims another address; without a trusted proxy all count for the socket's.
    for (let i = 0; i < 3; i++) {
      expect((await attempt(testApp, wrongKeyFor(key), `198.51.100.${i}`)).status).toBe(401);
    }
    expect((await attempt(testApp, key, "198.51.100.99")).status).toBe(429);
  });

  it("honours X-Forwarded-For set by a trusted proxy", async () => {
    const testApp = open({ TRUST_PROXY: "loopback", API_KEY_MAX_FAILURES: "3" });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    for (let i = 0; i < 3; i++) {
      expect((await attempt(testApp, wrongKeyFor(key), "198.51.100.7")).status).toBe(401);
    }
    expect((await attempt(testApp, key, "198.51.100.7")).status).toBe(429);
    expect((await attempt(testApp, key, "198.51.100.8")).status).toBe(200);
  });
});
