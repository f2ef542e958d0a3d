import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { SpanStatusCode } from "@opentelemetry/api";
import { authHeaderFor } from "../../support/auth";
import { testDatabaseUrl } from "../../support/env";
import { createTestApp, type TestApp } from "../../support/helpers";
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from "./otlpReceiver";
import { startTracedServer, type RunningServer } from "./tracedServer";

/**
 * Tracing when something goes wrong around a request: a client that goes away before its
 * answer, an OTLP receiver that is down when the server stops or when the `job` command ends.
 * Neither may cost a log line its trace, nor tracing change an exit code.
 */

const jobEntry = path.resolve(__dirname, "../../../dist/cli/job.js");

/** An OTLP endpoint nothing listens on any more: a receiver that is down. */
async function downReceiverUrl(): Promise<string> {
  const gone = await startOtlpReceiver();
  await gone.close();
  return gone.url;
}

let receiver: OtlpReceiver;
let testApp: TestApp;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  testApp = createTestApp();
});
afterAll(async () => {
  await receiver.close();
  await testApp.close();
});

describe("a request whose client goes away before the answer", () => {
  let server: RunningServer;
  const traceId = randomBytes(16).toString("hex");
  beforeAll(async () => {
    server = await startTracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    });
    const caller = await authHeaderFor(testApp);
    const { port } = new URL(server.url);
    // The headers and half the body, then the connection cut: the body parser fails on the
    // abort and the error handler answers 400 to a client that is no longer there.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write(
          "POST /api/v1/meetings HTTP/1.1\r\nHost: api\r\n" +
            `Authorization: ${caller.headers.Authorization}\r\n` +
            `traceparent: 00-${traceId}-${randomBytes(8).toString("hex")}-01\r\n` +
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n" +
            '{"title":',
        );
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 200);
      });
      socket.on("error", reject);
    });
    await receiver.waitFor((spans) =>
      spans.some((span) => span.traceId === traceId && span.kind === SPAN_KIND.server),
    );
  }, 90_000);
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it("writes its log line with the request's trace id", () => {
    const line = server
      .logLines()
      .find((entry) => entry.method === "POST" && entry.route === "/api/v1/meetings");
    expect(line).toMatchObject({ traceId });
  });

  it("ends its server span as an error: the answer never left", () => {
    const span = receiver.spans.find(
      (candidate) => candidate.traceId === traceId && candidate.kind === SPAN_KIND.server,
    );
    expect(span).toMatchObject({
      name: "POST /api/v1/meetings",
      status: {
        code: SpanStatusCode.ERROR,
        message: "connection closed before the response ended",
      },
    });
  });
});

describe("an OTLP receiver that is down at the end", () => {
  it("loses the last spans, not the server's shutdown: exit 0, everything closed, the loss logged", async () => {
    const gone = await startOtlpReceiver();
    const server = await startTracedServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: gone.url,
      // The spans wait in the batch until the shutdown sends them.
      OTEL_BSP_SCHEDULE_DELAY: "60000",
      OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
    });
    const response = await fetch(`${server.url}/api/v1/me`);
    expect(response.headers.get("trace-id")).toMatch(/^[0-9a-f]{32}$/);
    await gone.close();

    expect(await server.stop()).toBe(0);
    const messages = server.logLines().map((entry) => entry.msg);
    expect(messages).toContain("tracing: the last spans could not be exported");
    expect(messages).toContain("shutdown complete");
  }, 90_000);

  it("does not fail the job command: its run's outcome decides the exit code, the loss logged", async () => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(childEnv)) if (name.startsWith("OTEL_")) delete childEnv[name];
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [jobEntry, "cleanupOldWebhooks"],
      {
        env: {
          ...childEnv,
          NODE_ENV: "test",
          DATABASE_URL: testDatabaseUrl,
          OTEL_EXPORTER_OTLP_ENDPOINT: await downReceiverUrl(),
          OTEL_EXPORTER_OTLP_TIMEOUT: "1000",
        },
      },
    );
    const lines = stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ job: "cleanupOldWebhooks", status: "succeeded" }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "tracing: the last spans could not be exported" }),
    );
  }, 60_000);
});
