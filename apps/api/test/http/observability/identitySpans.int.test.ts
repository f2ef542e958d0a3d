import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { uniqueSuffix } from "@zigznote/database/testing";
import { formatApiKey } from "../../../src/identity/apiKeyService";
import { authHeaderFor, type AuthenticatedCaller } from "../../support/auth";
import { buildClerkScenario } from "../../support/clerkFixtures";
import { testRedisUrl } from "../../support/env";
import { startFakeClerk, type FakeClerk } from "../../support/fakes/clerkServer";
import { createTestApp, type TestApp } from "../../support/helpers";
import { startTcpProxy, type TcpProxy } from "../../support/tcpProxy";
import { newSvixSecret, svixHeaders } from "../../support/webhookSigning";
import { startOtlpReceiver, type OtlpReceiver } from "./otlpReceiver";
import { dumpSpans, expectNoLeaks, type Secret } from "./spanLeaks";
import {
  callTraced,
  spansOfTraces,
  startTracedServer,
  type RunningServer,
  type TracedCall,
} from "./tracedServer";

/**
 * The tracing promise ("secrets, tokens, e-mail addresses and request bodies never go into
 * spans") on the identity flows, as an operator runs the API: the built server with tracing on,
 * every span exported to an OTLP receiver in this test, the real Redis behind a proxy (so that
 * it can stall) with a password in REDIS_URL, Clerk's Backend API faked. Each test searches
 * every span received for the secrets it made itself: session tokens, API keys and their
 * Idempotency-Keys, the Redis password, Clerk's secret key, Svix's signing secret and
 * signatures, users' addresses.
 */

const instrumentEntry = path.resolve(__dirname, "../../../dist/instrument.js");
let receiver: OtlpReceiver;
let clerk: FakeClerk;
let proxy: TcpProxy;
let testApp: TestApp;
let server: RunningServer;
const redisPassword = `redis-pw-${randomBytes(12).toString("hex")}`;
const clerkWebhookSecret = newSvixSecret();

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  clerk = await startFakeClerk({ secretKey: `sk_test_${randomBytes(16).toString("hex")}` });
  const redis = new URL(testRedisUrl);
  proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
  // The test Redis has no password: ioredis sends AUTH anyway and goes on when Redis says it
  // needs none, as it would send it to a Redis that does.
  const redisUrl = new URL(proxy.urlFor(testRedisUrl));
  redisUrl.password = redisPassword;
  // For its database client (the callers' rows): the app under test is the child.
  testApp = createTestApp();
  server = await startTracedServer({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    REDIS_URL: redisUrl.toString(),
    REDIS_KEY_PREFIX: `test-spans-${uniqueSuffix()}`,
    CLERK_SECRET_KEY: clerk.secretKey,
    CLERK_API_URL: clerk.baseUrl,
    CLERK_WEBHOOK_SECRET: clerkWebhookSecret,
  });
}, 90_000);
afterAll(async () => {
  dumpSpans(receiver.spans);
  expect(await server.stop()).toBe(0);
  await receiver.close();
  await clerk.close();
  await proxy.close();
  await testApp.close();
});

const call = (path: string, init?: Parameters<typeof callTraced>[2]) =>
  callTraced(server, path, init);
const spansOf = (traceIds: string[]) => spansOfTraces(receiver, traceIds);

/** What a session carries: the whole token and its signature (the part that proves it). */
function sessionSecrets(caller: AuthenticatedCaller): Secret[] {
  return [
    { label: "a Clerk session token", value: caller.token },
    { label: "a Clerk session token's signature", value: caller.token.split(".")[2]! },
  ];
}

describe("identity flows under tracing", () => {
  it("keeps API keys, their Idempotency-Keys and session tokens out of every span", async () => {
    const admin = await authHeaderFor(testApp);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { id: admin.userId } });
    const idempotencyKey = `create-key-${randomBytes(16).toString("hex")}`;
    const keyName = `traced key ${randomBytes(8).toString("hex")}`;
    const create = () =>
      call("/api/v1/api-keys", {
        method: "POST",
        headers: {
          ...admin.headers,
          "content-type": "application/json",
          "idempotency-key": idempotencyKey,
        },
        body: JSON.stringify({ name: keyName, scopes: ["meetings:read"] }),
      });
    const created = await create();
    expect(created.response.status).toBe(201);
    const { key, id } = (await created.response.json()) as { key: string; id: string };
    // The replay answers the key again, from the stored (encrypted) answer.
    const replay = await create();
    expect(replay.response.headers.get("idempotent-replayed")).toBe("true");
    expect(((await replay.response.json()) as { key: string }).key).toBe(key);

    const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
    const used = await call("/api/v1/meetings", { headers: bearer(key) });
    expect(used.response.status).toBe(200);
    const again = await call("/api/v1/meetings", { headers: bearer(key) });
    expect(again.response.status).toBe(200);
    // A wrong secret for the same key id, and a malformed key: both counted by the lockout.
    const wrongKey = formatApiKey(key.slice(8, 20), randomBytes(16).toString("hex"));
    const wrong = await call("/api/v1/meetings", { headers: bearer(wrongKey) });
    expect(wrong.response.status).toBe(401);
    const malformedKey = `zn_live_${randomBytes(20).toString("hex")}`;
    const malformed = await call("/api/v1/meetings", { headers: bearer(malformedKey) });
    expect(malformed.response.status).toBe(401);
    // Revoked: the marker in Redis, then the key refused.
    const revoked = await call(`/api/v1/api-keys/${id}`, {
      method: "DELETE",
      headers: admin.headers,
    });
    expect(revoked.response.status).toBe(200);
    const refused = await call("/api/v1/meetings", { headers: bearer(key) });
    expect(refused.response.status).toBe(401);

    const traces = [created, replay, used, again, wrong, malformed, revoked, refused];
    const spans = await spansOf(traces.map((trace) => trace.traceId));
    // The keys' lockout counters and revocation marker are Redis commands in these traces.
    const redisKeys = spans
      .filter((span) => span.attributes["db.system.name"] === "redis")
      .map((span) => String(span.attributes["db.query.text"]));
    expect(redisKeys.some((text) => text.includes(":apikey-lockout:"))).toBe(true);
    expect(redisKeys.some((text) => text.includes(":apikey-revoked:"))).toBe(true);
    expectNoLeaks(spans, [
      ...sessionSecrets(admin),
      { label: "the API key", value: key },
      { label: "the API key's secret", value: key.slice(21, 53) },
      { label: "a wrong API key", value: wrongKey },
      { label: "a wrong API key's secret", value: wrongKey.slice(21, 53) },
      { label: "a malformed API key", value: malformedKey.slice(8) },
      { label: "the Idempotency-Key", value: idempotencyKey },
      { label: "the user's address", value: user.email! },
    ]);
  });

  it("keeps a key, a token or an address a caller puts in the path out of the request's span", async () => {
    const admin = await authHeaderFor(testApp);
    const created = await call("/api/v1/api-keys", {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: JSON.stringify({ name: "misplaced", scopes: ["meetings:read"] }),
    });
    const { key } = (await created.response.json()) as { key: string };
    const address = `misplaced-${uniqueSuffix()}@example.test`;
    // The key where its id goes (a revoke by key), the token and an address as ids.
    const misplaced = [
      await call(`/api/v1/api-keys/${key}`, { method: "DELETE", headers: admin.headers }),
      await call(`/api/v1/meetings/${admin.token}`, { headers: admin.headers }),
      await call(`/api/v1/members/${encodeURIComponent(address)}`, { headers: admin.headers }),
      await call(`/api/v1/members/${address}`, { headers: admin.headers }),
    ];
    for (const { response } of misplaced) expect(response.status).toBeGreaterThanOrEqual(400);
    const spans = await spansOf(misplaced.map((trace) => trace.traceId));
    expectNoLeaks(spans, [
      ...sessionSecrets(admin),
      { label: "the API key", value: key },
      { label: "the API key's secret", value: key.slice(21, 53) },
      { label: "an address", value: address },
      { label: "an address, percent-encoded", value: encodeURIComponent(address) },
    ]);
  });

  it("keeps the Redis password out of the commands of a request during which Redis stalled", async () => {
    const admin = await authHeaderFor(testApp);
    const created = await call("/api/v1/api-keys", {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: JSON.stringify({ name: "stalled", scopes: ["meetings:read"] }),
    });
    const headers = {
      Authorization: `Bearer ${((await created.response.json()) as { key: string }).key}`,
    };
    // Redis stops answering during a request: its commands time out (their spans are errors)
    // and the connection is dropped and made again, AUTH first. ioredis makes it again in the
    // first connection's context (untraced): were that ever the request's, its AUTH would be
    // traced, as in the next test.
    proxy.pause();
    const stalled = await call("/api/v1/meetings", { headers });
    expect(stalled.response.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 800));
    proxy.resume();
    // Redis answers again once the connection is made again (ioredis retries every 2 s at most).
    let after: TracedCall | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      after = await call("/api/v1/meetings", { headers });
      if (after.response.headers.get("ratelimit")) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(after!.response.headers.get("ratelimit")).toBeTruthy();
    const spans = await spansOf([stalled.traceId, after!.traceId]);
    expect(
      spans.some(
        (span) => span.traceId === stalled.traceId && span.status.message === "Command timed out",
      ),
    ).toBe(true);
    expectNoLeaks(receiver.spans, [{ label: "the Redis password", value: redisPassword }]);
  });

  it("keeps the Redis password out of a connection made inside a trace (its AUTH command)", async () => {
    // The SDK as the server starts it (dist/instrument.js), and an ioredis client that connects
    // inside a span: as a client created lazily, or by a job, would. Its AUTH is traced.
    const redisUrl = new URL(testRedisUrl);
    redisUrl.password = redisPassword;
    const script = `
      const { tracing } = require(${JSON.stringify(instrumentEntry)});
      const { trace } = require("@opentelemetry/api");
      const { Redis } = require("ioredis");
      trace.getTracer("probe").startActiveSpan("redis probe", async (span) => {
        const redis = new Redis(${JSON.stringify(redisUrl.toString())});
        await redis.get("spans-probe:" + process.pid);
        redis.disconnect();
        span.end();
        await tracing.shutdown();
      });`;
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(childEnv)) if (name.startsWith("OTEL_")) delete childEnv[name];
    await promisify(execFile)(process.execPath, ["-e", script], {
      cwd: path.resolve(__dirname, "../../.."),
      env: { ...childEnv, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url },
    });
    await receiver.waitFor((spans) => spans.some((span) => span.name === "redis probe"));
    const probe = receiver.spans.find((span) => span.name === "redis probe")!;
    const spans = receiver.spans.filter((span) => span.traceId === probe.traceId);
    expectNoLeaks(spans, [{ label: "the Redis password", value: redisPassword }]);
    // The connection's commands are in the trace: AUTH by its name alone, the GET with its key.
    const statements = spans.map((span) => span.attributes["db.query.text"]);
    expect(statements).toContain("auth");
    expect(statements).toContain(`get spans-probe:${probe.resource["process.pid"] as number}`);
  });

  it("keeps Clerk's secret key out of the member add's spans", async () => {
    const admin = await authHeaderFor(testApp);
    clerk.addOrganization(admin.orgClerkId);
    const newcomer = `user_${uniqueSuffix()}`;
    clerk.addUser(newcomer);
    const added = await call("/api/v1/members", {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: JSON.stringify({ userId: newcomer, role: "member" }),
    });
    expect(added.response.status).toBe(201);
    const spans = await spansOf([added.traceId]);
    // The call to Clerk is a client span of fetch's instrumentation in the request's trace.
    expect(spans.some((span) => String(span.attributes["url.full"]).startsWith(clerk.baseUrl)));
    expectNoLeaks(spans, [
      ...sessionSecrets(admin),
      { label: "Clerk's secret key", value: clerk.secretKey },
    ]);
  });

  it("keeps Svix's signing secret and signatures and the users' addresses out of Clerk's webhooks", async () => {
    const scenario = buildClerkScenario(uniqueSuffix(), Date.now());
    const signatures: Secret[] = [];
    const traceIds: string[] = [];
    for (const event of scenario) {
      const body = JSON.stringify(event.body);
      const headers = svixHeaders(clerkWebhookSecret, event.msgId, body);
      for (const signature of headers["svix-signature"]!.split(" ")) {
        signatures.push({ label: "a svix-signature", value: signature.replace(/^v1,/, "") });
      }
      const delivered = await call("/webhooks/clerk", { method: "POST", headers, body });
      expect(delivered.response.status).toBe(200);
      traceIds.push(delivered.traceId);
    }
    // A forged delivery (another secret's signature) is refused before its body is read.
    const forgedBody = JSON.stringify(scenario[0]!.body);
    const forgedHeaders = svixHeaders(newSvixSecret(), `msg_${uniqueSuffix()}`, forgedBody);
    signatures.push({
      label: "a forged svix-signature",
      value: forgedHeaders["svix-signature"]!.replace(/^v1,/, ""),
    });
    const forged = await call("/webhooks/clerk", {
      method: "POST",
      headers: forgedHeaders,
      body: forgedBody,
    });
    expect(forged.response.status).toBe(401);
    // A signed event whose data is not what Clerk sends: its handler fails, and the exception
    // its span records names the fields, never what they held.
    const marker = `malformed-${randomBytes(8).toString("hex")}`;
    const malformedBody = JSON.stringify({
      type: "user.created",
      object: "event",
      timestamp: Date.now(),
      instance_id: "ins_spans",
      data: { id: `user_${uniqueSuffix()}`, first_name: { marker }, updated_at: marker },
    });
    const malformed = await call("/webhooks/clerk", {
      method: "POST",
      headers: svixHeaders(clerkWebhookSecret, `msg_${uniqueSuffix()}`, malformedBody),
      body: malformedBody,
    });
    expect(malformed.response.status).toBe(500);
    traceIds.push(forged.traceId, malformed.traceId);

    const spans = await spansOf(traceIds);
    // Each delivery has its processing span with the claim (and handler) below it.
    expect(spans.filter((span) => span.name.startsWith("webhook clerk ")).length).toBe(
      scenario.length + 1,
    );
    const failed = spans.find(
      (span) => span.name === "webhook clerk user.created" && span.status.code === 2,
    );
    expect(failed?.events.map((event) => event.name)).toContain("exception");
    const addresses = [...new Set(JSON.stringify(scenario).match(/[\w.+-]+@[\w-]+(\.[\w-]+)+/g))];
    expect(addresses.length).toBeGreaterThan(3);
    expectNoLeaks(spans, [
      { label: "Clerk's webhook signing secret", value: clerkWebhookSecret.slice(6) },
      ...signatures,
      ...addresses.map((address) => ({ label: "an address in Clerk's events", value: address })),
      { label: "a malformed event's values (a request body)", value: marker },
    ]);
  });
});
