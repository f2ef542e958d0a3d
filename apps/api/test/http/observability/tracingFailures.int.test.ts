import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { testDatabaseUrl } from "../../support/env";
import { startOtlpReceiver } from "./otlpReceiver";
import { startTracedServer } from "./tracedServer";

/**
 * Tracing when something goes wrong around it: an OTLP receiver that is down when the server
 * stops or when the `job` command ends. Tracing may not change an exit code.
 */

const jobEntry = path.resolve(__dirname, "../../../dist/cli/job.js");

/** An OTLP endpoint nothing listens on any more: a receiver that is down. */
async function downReceiverUrl(): Promise<string> {
  const gone = await startOtlpReceiver();
  await gone.close();
  return gone.url;
}

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
