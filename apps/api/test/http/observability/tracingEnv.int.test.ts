import { randomBytes } from "node:crypto";
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from "./otlpReceiver";
import { callTraced, startTracedServer, type RunningServer } from "./tracedServer";

/**
 * The OTEL_* variables as operators get them wrong or unusual: the built server (its first
 * import reads them) with an endpoint carrying a query string, with values it cannot use, and
 * with an endpoint that is no URL. Tracing never stops the API: a value it cannot use is named in
 * one warning at start and its default used (the OpenTelemetry specification's rule).
 */

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver.close());

/** The warning `instrument.ts` writes about ignored values (a JSON line, like the logger's). */
function tracingWarnings(server: RunningServer): Record<string, unknown>[] {
  return server
    .logLines()
    .filter((entry) => typeof entry.msg === "string" && entry.msg.startsWith("tracing: ignored"));
}

describe("OTEL_EXPORTER_OTLP_ENDPOINT with a query string", () => {
  const token = `tenant-${randomBytes(6).toString("hex")}`;
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/?tenant=${token}`,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
  }, 90_000);
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("exports to <endpoint path>/v1/traces with the query kept, and never logs the query", async () => {
    const { response, traceId } = await callTraced(server, "/api/v1/me");
    expect(response.headers.get("trace-id")).toBe(traceId);
    await receiver.waitFor((spans) =>
      spans.some((span) => span.traceId === traceId && span.kind === SPAN_KIND.server),
    );
    expect(receiver.exports.map((received) => received.url)).toContain(
      `/v1/traces?tenant=${token}`,
    );
    const on = server.logLines().find((entry) => entry.msg === "OpenTelemetry tracing on");
    expect(on).toMatchObject({ endpoint: receiver.url });
    expect(server.output()).not.toContain(token);
    expect(tracingWarnings(server)).toEqual([]);
  });
});

describe("OTEL_* values the API cannot use", () => {
  const secret = `backend-key-${randomBytes(8).toString("hex")}`;
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      OTEL_SERVICE_NAME: "zigznote-api-misconfigured",
      OTEL_TRACES_SAMPLER: "sometimes",
      OTEL_TRACES_SAMPLER_ARG: "2",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_TIMEOUT: "ten seconds",
      OTEL_BSP_MAX_QUEUE_SIZE: "lots",
      OTEL_EXPORTER_OTLP_HEADERS: `x-team=ops,authorization Bearer ${secret}`,
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test,broken",
    });
  }, 90_000);
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("starts, and says which values it ignored in one warning, without a header's value", () => {
    const warnings = tracingWarnings(server);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, service: "zigznote-api" });
    const problems = warnings[0]!.problems as string[];
    expect(problems.map((problem) => problem.split(":")[0])).toEqual([
      "OTEL_EXPORTER_OTLP_PROTOCOL",
      "OTEL_EXPORTER_OTLP_HEADERS",
      "OTEL_EXPORTER_OTLP_TIMEOUT",
      "OTEL_RESOURCE_ATTRIBUTES",
      "OTEL_TRACES_SAMPLER",
      "OTEL_TRACES_SAMPLER_ARG",
      "OTEL_BSP_MAX_QUEUE_SIZE",
    ]);
    expect(server.output()).not.toContain(secret);
  });

  it("traces with the defaults in their place: every request, over http/protobuf, the good header sent", async () => {
    const { response, traceId } = await callTraced(server, "/api/v1/me");
    expect(response.headers.get("trace-id")).toBe(traceId);
    await receiver.waitFor((spans) =>
      spans.some((span) => span.traceId === traceId && span.kind === SPAN_KIND.server),
    );
    const span = receiver.spans.find(
      (candidate) => candidate.traceId === traceId && candidate.kind === SPAN_KIND.server,
    )!;
    expect(span.encoding).toBe("protobuf");
    expect(span.resource["service.name"]).toBe("zigznote-api-misconfigured");
    // The whole of a malformed OTEL_RESOURCE_ATTRIBUTES is discarded (the spec's rule).
    expect(span.resource["deployment.environment"]).toBeUndefined();
    const exported = receiver.exports.find(
      (candidate) => candidate.headers["x-team"] !== undefined,
    );
    expect(exported?.headers["x-team"]).toBe("ops");
    expect(JSON.stringify(receiver.exports.map((candidate) => candidate.headers))).not.toContain(
      secret,
    );
  });
});

describe("an OTEL_EXPORTER_OTLP_ENDPOINT that is no URL", () => {
  it("starts with tracing off and says so", async () => {
    const server = await startTracedServer({ OTEL_EXPORTER_OTLP_ENDPOINT: "otel-collector:4318" });
    try {
      expect(tracingWarnings(server)).toMatchObject([
        {
          problems: ["OTEL_EXPORTER_OTLP_ENDPOINT: expected an http or https URL; tracing is off"],
        },
      ]);
      const response = await fetch(`${server.url}/health`);
      expect(response.status).toBe(200);
      const me = await callTraced(server, "/api/v1/me");
      expect(me.response.headers.get("trace-id")).toBeNull();
      expect(server.logLines().map((entry) => entry.msg)).not.toContain("OpenTelemetry tracing on");
    } finally {
      expect(await server.stop()).toBe(0);
    }
  }, 90_000);
});
