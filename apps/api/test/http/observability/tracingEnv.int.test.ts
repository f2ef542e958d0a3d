import { randomBytes } from "node:crypto";
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from "./otlpReceiver";
import { callTraced, startTracedServer, type RunningServer } from "./tracedServer";

/**
 * The OTEL_* variables as operators set them, beyond the plain case: the built server (its first
 * import reads them) with an endpoint carrying a query string.
 */

let receiver: OtlpReceiver;
beforeAll(async () => {
  receiver = await startOtlpReceiver();
});
afterAll(() => receiver.close());

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
  });
});
