import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import { SpanStatusCode } from "@opentelemetry/api";
import request from "supertest";
import { uniqueSuffix } from "@zigznote/database/testing";
import { apiKeyHeaderFor, authHeaderFor, type AuthenticatedCaller } from "../../support/auth";
import { testRedisUrl } from "../../support/env";
import { startFakeRecall, type FakeRecall } from "../../support/fakes/recallServer";
import { FakeStripeServer } from "../../support/fakes/stripeServer";
import { createTestApp, type TestApp } from "../../support/helpers";
import {
  descendantsOf,
  SPAN_KIND,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from "./otlpReceiver";
import { startTracedServer, type RunningServer } from "./tracedServer";

/**
 * Tracing as an operator switches it on: the built server (`node dist/server.js`, whose first
 * import starts the SDK) with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP receiver this test
 * runs, Recall and Stripe at their fake servers, the real Redis, Clerk sessions signed with the
 * test's key. One server per protocol the API supports (http/protobuf, the default, and
 * http/json).
 */

const instrumentEntry = path.resolve(__dirname, "../../../dist/instrument.js");

/** A W3C traceparent of a caller's own (sampled) span, with its ids. */
function callerTraceparent(): { header: string; traceId: string; parentSpanId: string } {
  const traceId = randomBytes(16).toString("hex");
  const parentSpanId = randomBytes(8).toString("hex");
  return { header: `00-${traceId}-${parentSpanId}-01`, traceId, parentSpanId };
}

/** Every string a span carries (name, attribute values, events, status), for leak checks. */
function stringsOf(span: ReceivedSpan): string[] {
  const values = [
    span.name,
    span.status.message,
    ...Object.values(span.attributes),
    ...span.events.flatMap((event) => Object.values(event.attributes)),
  ];
  return values.map((value) => (typeof value === "string" ? value : JSON.stringify(value)));
}

function serverSpanOf(spans: ReceivedSpan[], traceId: string): ReceivedSpan | undefined {
  return spans.find((span) => span.traceId === traceId && span.kind === SPAN_KIND.server);
}

const isDatabaseSpan = (span: ReceivedSpan, system: string) =>
  span.attributes["db.system.name"] === system || span.attributes["db.system"] === system;

let receiver: OtlpReceiver;
let recall: FakeRecall;
let stripe: FakeStripeServer;
let testApp: TestApp;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  recall = await startFakeRecall();
  stripe = await FakeStripeServer.start();
  // For its database client (rows of the callers), not its app: the app under test is the child.
  testApp = createTestApp();
});
afterAll(async () => {
  await receiver.close();
  await recall.close();
  await stripe.close();
  await testApp.close();
});

describe.each([
  ["http/protobuf", "protobuf"],
  ["http/json", "json"],
] as const)("tracing with OTEL_EXPORTER_OTLP_PROTOCOL=%s", (protocol, encoding) => {
  let server: RunningServer;
  let caller: AuthenticatedCaller;
  let email: string;

  beforeAll(async () => {
    server = await startTracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: "zigznote-api-under-test",
      OTEL_BSP_SCHEDULE_DELAY: "100",
      RECALL_API_KEY: recall.apiKey,
      RECALL_API_BASE_URL: recall.baseUrl,
      RECALL_MAX_RETRIES: "0",
      STRIPE_SECRET_KEY: stripe.secretKey,
      STRIPE_API_HOST: "127.0.0.1",
      STRIPE_API_PORT: String(stripe.port),
      STRIPE_API_PROTOCOL: "http",
      REDIS_URL: testRedisUrl,
      REDIS_KEY_PREFIX: `test-tracing-${uniqueSuffix()}`,
    });
    caller = await authHeaderFor(testApp);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { id: caller.userId } });
    email = user.email!;
  }, 90_000);
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("continues a request's traceparent: a server span named by route, database spans below it, the trace id in the response and the log line", async () => {
    const caller2 = callerTraceparent();
    const response = await fetch(`${server.url}/api/v1/me`, {
      headers: { ...caller.headers, traceparent: caller2.header },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("trace-id")).toBe(caller2.traceId);
    const requestId = response.headers.get("x-request-id");
    expect(requestId).toBeTruthy();

    await receiver.waitFor((spans) => {
      const root = serverSpanOf(spans, caller2.traceId);
      return root !== undefined && descendantsOf(spans, root).length > 0;
    });
    const root = serverSpanOf(receiver.spans, caller2.traceId)!;
    expect(root).toMatchObject({
      name: "GET /api/v1/me",
      parentSpanId: caller2.parentSpanId,
      encoding,
    });
    expect(root.attributes["http.route"]).toBe("/api/v1/me");
    expect(root.attributes["http.response.status_code"]).toBe(200);
    expect(root.resource["service.name"]).toBe("zigznote-api-under-test");

    const database = descendantsOf(receiver.spans, root).filter((span) =>
      isDatabaseSpan(span, "postgresql"),
    );
    expect(database.length).toBeGreaterThan(0);
    for (const span of database) {
      expect(span.kind).toBe(SPAN_KIND.client);
      const statement = span.attributes["db.query.text"] ?? span.attributes["db.statement"];
      expect(typeof statement).toBe("string");
    }

    // The request's log line carries the trace (and the request id, as before).
    const line = server.logLines().find((entry) => entry.requestId === requestId);
    expect(line).toMatchObject({
      msg: "request completed",
      route: "/api/v1/me",
      traceId: caller2.traceId,
    });

    // Nothing the caller sent or the user owns is in the trace: no token, no e-mail address.
    for (const span of receiver.spans.filter(
      (candidate) => candidate.traceId === caller2.traceId,
    )) {
      for (const value of stringsOf(span)) {
        expect(value).not.toContain(caller.token);
        expect(value).not.toContain(email);
      }
    }
  });

  it("keeps the request's trace when its body arrives after the headers (statements and log line in it)", async () => {
    const caller2 = callerTraceparent();
    const body = JSON.stringify({
      title: "Late body",
      meetingUrl: `https://zoom.us/j/${String(Date.now() + 7).slice(-11)}`,
    });
    // The headers first, the body 150 ms later: the JSON parser reads it in the socket's
    // callbacks, outside the async context the request began in.
    const answer = await new Promise<{ status: number; requestId: string }>((resolve, reject) => {
      const outgoing = httpRequest(
        `${server.url}/api/v1/meetings`,
        {
          method: "POST",
          headers: {
            ...caller.headers,
            "content-type": "application/json",
            "content-length": String(Buffer.byteLength(body)),
            traceparent: caller2.header,
          },
        },
        (incoming) => {
          incoming.resume();
          incoming.on("end", () =>
            resolve({
              status: incoming.statusCode!,
              requestId: String(incoming.headers["x-request-id"]),
            }),
          );
        },
      );
      outgoing.on("error", reject);
      outgoing.flushHeaders();
      setTimeout(() => outgoing.end(body), 150);
    });
    expect(answer.status).toBe(201);

    await receiver.waitFor((spans) => {
      const root = serverSpanOf(spans, caller2.traceId);
      return (
        root !== undefined &&
        descendantsOf(spans, root).some((span) => isDatabaseSpan(span, "postgresql"))
      );
    });
    const root = serverSpanOf(receiver.spans, caller2.traceId)!;
    expect(root.name).toBe("POST /api/v1/meetings");
    // The insert is among the statements below the server span, not in a trace of its own.
    const statements = descendantsOf(receiver.spans, root)
      .filter((span) => isDatabaseSpan(span, "postgresql"))
      .map((span) => String(span.attributes["db.query.text"] ?? span.attributes["db.statement"]));
    expect(statements.some((text) => /insert into "?(public"?\.)?"?meetings"?/i.test(text))).toBe(
      true,
    );
    const line = server.logLines().find((entry) => entry.requestId === answer.requestId);
    expect(line).toMatchObject({ msg: "request completed", traceId: caller2.traceId });
  });

  it("traces a keyed create's claim and answer (one round trip each) under its server span; the repeat replays", async () => {
    const caller2 = callerTraceparent();
    const body = JSON.stringify({
      title: "Keyed and traced",
      meetingUrl: `https://zoom.us/j/${String(Date.now() + 11).slice(-11)}`,
    });
    const send = (traceparent: string) =>
      fetch(`${server.url}/api/v1/meetings`, {
        method: "POST",
        headers: {
          ...caller.headers,
          "content-type": "application/json",
          "idempotency-key": `traced-${caller2.traceId}`,
          traceparent,
        },
        body,
      });
    const first = await send(caller2.header);
    expect(first.status).toBe(201);
    const created = (await first.json()) as { id: string };
    const caller3 = callerTraceparent();
    const repeat = await send(caller3.header);
    expect(repeat.status).toBe(201);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
    expect(((await repeat.json()) as { id: string }).id).toBe(created.id);

    const statementsOf = (spans: ReceivedSpan[], traceId: string) =>
      spans.filter((span) => span.traceId === traceId && isDatabaseSpan(span, "postgresql"));
    const textOf = (span: ReceivedSpan) =>
      String(span.attributes["db.query.text"] ?? span.attributes["db.statement"]);
    const isClaim = (span: ReceivedSpan) =>
      /^BEGIN; CALL idempotency_claim_in_transaction/.test(textOf(span));
    const isAnswer = (span: ReceivedSpan) =>
      /^CALL idempotency_answer_in_transaction\(.*\); COMMIT$/s.test(textOf(span));
    await receiver.waitFor(
      (spans) =>
        statementsOf(spans, caller2.traceId).some(isAnswer) &&
        statementsOf(spans, caller3.traceId).some(isClaim),
    );
    // BEGIN travels with the claim and the answer with COMMIT: one statement span for each pair.
    const written = statementsOf(receiver.spans, caller2.traceId);
    expect(written.filter(isClaim)).toHaveLength(1);
    expect(written.filter(isAnswer)).toHaveLength(1);
    const root = serverSpanOf(receiver.spans, caller2.traceId)!;
    for (const span of [...written.filter(isClaim), ...written.filter(isAnswer)]) {
      expect(descendantsOf(receiver.spans, root)).toContainEqual(span);
      expect(span.status.code).not.toBe(SpanStatusCode.ERROR);
    }
    // The repeat's claim found the key answered: its span is an error, and no answer follows.
    const replayed = statementsOf(receiver.spans, caller3.traceId);
    expect(replayed.filter(isClaim).map((span) => span.status.code)).toEqual([
      SpanStatusCode.ERROR,
    ]);
    expect(replayed.filter(isAnswer)).toEqual([]);
    // Parameters, never values: the meeting's id (in the sealed answer) is nowhere in the trace.
    for (const span of receiver.spans.filter(
      (candidate) => candidate.traceId === caller2.traceId,
    )) {
      for (const value of stringsOf(span)) expect(value).not.toContain(created.id);
    }
  });

  it("describes the request by the HTTP conventions, without its query string; probes are not traced", async () => {
    const caller2 = callerTraceparent();
    const response = await fetch(`${server.url}/api/v1/meetings?limit=13`, {
      headers: { ...caller.headers, traceparent: caller2.header, "user-agent": "tracing-test/1" },
    });
    expect(response.status).toBe(200);
    await receiver.waitFor((spans) => serverSpanOf(spans, caller2.traceId) !== undefined);
    const root = serverSpanOf(receiver.spans, caller2.traceId)!;
    expect(root.name).toBe("GET /api/v1/meetings");
    expect(root.attributes).toMatchObject({
      "http.request.method": "GET",
      "url.path": "/api/v1/meetings",
      "url.scheme": "http",
      "http.route": "/api/v1/meetings",
      "http.response.status_code": 200,
      "network.protocol.version": "1.1",
      "user_agent.original": "tracing-test/1",
    });
    expect(root.status.code).not.toBe(2);
    for (const value of stringsOf(root)) expect(value).not.toContain("limit=");

    // A 5xx makes the span an error (here a webhook whose signing secret is not configured).
    const failing = callerTraceparent();
    const webhook = await fetch(`${server.url}/webhooks/recall`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: failing.header },
      body: "{}",
    });
    expect(webhook.status).toBe(503);
    await receiver.waitFor((spans) => serverSpanOf(spans, failing.traceId) !== undefined);
    expect(serverSpanOf(receiver.spans, failing.traceId)).toMatchObject({
      name: "POST /webhooks/recall",
      status: { code: 2 },
      attributes: expect.objectContaining({ "http.response.status_code": 503 }),
    });

    // A probe's request makes no span, and answers without Trace-Id (also with a query string).
    const probe = callerTraceparent();
    for (const path of ["/health", "/health?probe=lb"]) {
      const health = await fetch(`${server.url}${path}`, {
        headers: { traceparent: probe.header },
      });
      expect(health.status).toBe(200);
      expect(health.headers.get("trace-id")).toBeNull();
    }
    const missing = await fetch(`${server.url}/api/v1/nothing-here`, {
      headers: { ...caller.headers, traceparent: probe.header },
    });
    expect(missing.status).toBe(404);
    await receiver.waitFor((spans) => serverSpanOf(spans, probe.traceId) !== undefined);
    expect(
      receiver.spans.filter(
        (span) => span.traceId === probe.traceId && span.kind === SPAN_KIND.server,
      ),
    ).toHaveLength(1);
  });

  it("gives a bot creation a client span for its call to Recall, under the request's server span", async () => {
    const meetingResponse = await fetch(`${server.url}/api/v1/meetings`, {
      method: "POST",
      headers: { ...caller.headers, "content-type": "application/json" },
      body: JSON.stringify({
        title: "Weekly sync",
        meetingUrl: `https://zoom.us/j/${String(Date.now()).slice(-11)}`,
      }),
    });
    expect(meetingResponse.status).toBe(201);
    const meeting = (await meetingResponse.json()) as { id: string };

    const caller2 = callerTraceparent();
    const response = await fetch(`${server.url}/api/v1/meetings/${meeting.id}/bot`, {
      method: "POST",
      headers: {
        ...caller.headers,
        "content-type": "application/json",
        traceparent: caller2.header,
        // What a caller may put in baggage: it is not passed on to providers.
        baggage: "user.email=ada%40example.com,tenant=acme",
      },
      body: "{}",
    });
    expect(response.status).toBe(201);
    expect(recall.createdBots()).not.toHaveLength(0);
    // The call to Recall continues the trace and carries none of the caller's baggage.
    const createCall = recall.requests.find(
      (call) =>
        call.method === "POST" &&
        call.path === "/api/v1/bot/" &&
        call.headers.traceparent?.includes(caller2.traceId),
    );
    expect(createCall).toBeDefined();
    expect(createCall!.headers.baggage).toBeUndefined();

    const isRecallCall = (span: ReceivedSpan) =>
      span.kind === SPAN_KIND.client &&
      typeof span.attributes["url.full"] === "string" &&
      span.attributes["url.full"].startsWith(`${recall.baseUrl}/api/v1/bot/`);
    await receiver.waitFor((spans) => {
      const root = serverSpanOf(spans, caller2.traceId);
      return root !== undefined && descendantsOf(spans, root).some(isRecallCall);
    });
    const root = serverSpanOf(receiver.spans, caller2.traceId)!;
    expect(root.name).toBe("POST /api/v1/meetings/:id/bot");
    const below = descendantsOf(receiver.spans, root);
    const call = below.find(isRecallCall)!;
    expect(call.attributes["http.request.method"]).toBe("POST");
    expect(call.attributes["http.response.status_code"]).toBe(201);
    // The Recall client's own span (the call, over its attempts) is the HTTP span's parent.
    const recallSpan = below.find((span) => span.spanId === call.parentSpanId)!;
    expect(recallSpan).toMatchObject({ name: "recall create a bot", kind: SPAN_KIND.internal });
    expect(recallSpan.attributes["zigznote.recall.attempts"]).toBe(1);
    // The bot's reservation and its record are statements in the same trace.
    expect(below.some((span) => isDatabaseSpan(span, "postgresql"))).toBe(true);

    for (const span of receiver.spans.filter(
      (candidate) => candidate.traceId === caller2.traceId,
    )) {
      for (const value of stringsOf(span)) {
        expect(value).not.toContain(recall.apiKey);
        expect(value).not.toContain(caller.token);
      }
    }
  });

  it("gives the calls Stripe's SDK makes client spans under the request's server span, without the customer's address", async () => {
    const admin = await authHeaderFor(testApp, { role: "admin" });
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { id: admin.userId } });
    const caller = callerTraceparent();
    const response = await fetch(`${server.url}/api/v1/billing/portal`, {
      method: "POST",
      headers: { ...admin.headers, traceparent: caller.header },
    });
    expect(response.status).toBe(200);
    expect(stripe.requestsTo("POST", "/v1/billing_portal/sessions")).not.toHaveLength(0);

    const isStripeCall = (span: ReceivedSpan) =>
      span.kind === SPAN_KIND.client &&
      typeof span.attributes["url.full"] === "string" &&
      span.attributes["url.full"].startsWith(`http://127.0.0.1:${stripe.port}/v1/`);
    await receiver.waitFor((spans) => {
      const root = serverSpanOf(spans, caller.traceId);
      return root !== undefined && descendantsOf(spans, root).some(isStripeCall);
    });
    const root = serverSpanOf(receiver.spans, caller.traceId)!;
    expect(root.name).toBe("POST /api/v1/billing/portal");
    const calls = descendantsOf(receiver.spans, root).filter(isStripeCall);
    expect(calls.map((span) => span.attributes["url.full"])).toContain(
      `http://127.0.0.1:${stripe.port}/v1/billing_portal/sessions`,
    );
    for (const call of calls) {
      expect(call.attributes["http.request.method"]).toBe("POST");
      expect(call.attributes["http.response.status_code"]).toBe(200);
    }
    for (const span of receiver.spans.filter((candidate) => candidate.traceId === caller.traceId)) {
      for (const value of stringsOf(span)) {
        expect(value).not.toContain(user.email!);
        expect(value).not.toContain(stripe.secretKey);
      }
    }
  });

  it("gives the Redis commands of an API key's lockout check spans, with their keys and no values", async () => {
    const { headers, key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const caller = callerTraceparent();
    const response = await fetch(`${server.url}/api/v1/me`, {
      headers: { ...headers, traceparent: caller.header },
    });
    expect(response.status).toBe(200);

    await receiver.waitFor((spans) => {
      const root = serverSpanOf(spans, caller.traceId);
      return (
        root !== undefined && descendantsOf(spans, root).some((s) => isDatabaseSpan(s, "redis"))
      );
    });
    const root = serverSpanOf(receiver.spans, caller.traceId)!;
    const commands = descendantsOf(receiver.spans, root).filter((s) => isDatabaseSpan(s, "redis"));
    for (const command of commands) {
      expect(command.kind).toBe(SPAN_KIND.client);
      const statement = String(
        command.attributes["db.query.text"] ?? command.attributes["db.statement"],
      );
      // The command and its keys (MULTI/EXEC have none), never the values.
      expect(statement).toMatch(/^\w+( test-tracing-\S+)*$/);
      expect(statement).not.toContain(key);
    }
    expect(
      commands.some((command) =>
        String(command.attributes["db.query.text"] ?? command.attributes["db.statement"]).includes(
          ":apikey-lockout:",
        ),
      ),
    ).toBe(true);
    for (const span of receiver.spans.filter((candidate) => candidate.traceId === caller.traceId)) {
      for (const value of stringsOf(span)) expect(value).not.toContain(key);
    }
  });
});

describe("with no OTLP endpoint", () => {
  /** Loads instrument.js as server.ts does, then reports what it loaded and patched. */
  async function probe(env: Record<string, string>) {
    const script = `
      require(${JSON.stringify(instrumentEntry)});
      const http = require("node:http");
      const pg = require("pg");
      console.log(JSON.stringify({
        sdkModules: Object.keys(require.cache).filter((file) => file.includes("@opentelemetry")).length,
        isHttpPatched: "__wrapped" in http.request,
        isServerPatched: "__wrapped" in http.Server.prototype.emit,
        isPgPatched: "__wrapped" in pg.Client.prototype.query,
      }));`;
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(childEnv)) if (name.startsWith("OTEL_")) delete childEnv[name];
    const { stdout } = await promisify(execFile)(process.execPath, ["-e", script], {
      cwd: path.resolve(__dirname, "../../.."),
      env: { ...childEnv, ...env },
    });
    return JSON.parse(stdout) as {
      sdkModules: number;
      isHttpPatched: boolean;
      isServerPatched: boolean;
      isPgPatched: boolean;
    };
  }

  it("loads none of the SDK and patches nothing (OTEL_SDK_DISABLED=true wins over an endpoint)", async () => {
    const nothing = {
      sdkModules: 0,
      isHttpPatched: false,
      isServerPatched: false,
      isPgPatched: false,
    };
    expect(await probe({})).toEqual(nothing);
    expect(
      await probe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SDK_DISABLED: "true" }),
    ).toEqual(nothing);
    // The same probe sees the SDK when an endpoint is set: outgoing HTTP and pg are patched; the
    // server's requests are not (their spans come from the app's own hook, traceContext.ts).
    const on = await probe({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    expect(on.sdkModules).toBeGreaterThan(0);
    expect(on).toMatchObject({ isHttpPatched: true, isServerPatched: false, isPgPatched: true });
  });

  it("answers without a Trace-Id header", async () => {
    const caller = await authHeaderFor(testApp);
    const response = await request(testApp.app).get("/api/v1/me").set(caller.headers);
    expect(response.status).toBe(200);
    expect(response.headers["trace-id"]).toBeUndefined();
    expect(response.headers["x-request-id"]).toBeTruthy();
  });
});
