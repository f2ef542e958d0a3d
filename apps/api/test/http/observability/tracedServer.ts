import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { clerkTestEnv } from "../../support/auth";
import { testDatabaseUrl } from "../../support/env";
import { logEntries, waitForListening } from "../../support/serverProcess";
import { SPAN_KIND, type OtlpReceiver, type ReceivedSpan } from "./otlpReceiver";

/**
 * The built server (`node dist/server.js`, whose first import starts the SDK) as an operator
 * runs it with tracing on: OTEL_* variables only from `env` (never the test process's own), the
 * test database, Clerk sessions signed with the tests' key, jobs off unless `env` says so.
 */

const serverEntry = path.resolve(__dirname, "../../../dist/server.js");

export interface RunningServer {
  child: ChildProcess;
  url: string;
  /** Every JSON line the server wrote to stdout. */
  logLines(): Record<string, unknown>[];
  /** Everything it wrote, stdout and stderr. */
  output(): string;
  stop(): Promise<number | null>;
}

export async function startTracedServer(env: Record<string, string>): Promise<RunningServer> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(childEnv)) if (name.startsWith("OTEL_")) delete childEnv[name];
  const child = spawn(process.execPath, [serverEntry], {
    env: {
      ...childEnv,
      NODE_ENV: "test",
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "debug",
      DATABASE_URL: testDatabaseUrl,
      JOBS_ENABLED: "false",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...clerkTestEnv(),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const port = await waitForListening({ child, output: () => output }, 60_000);
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    logLines: () => logEntries(output),
    output: () => output,
    stop: () => {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      return exited;
    },
  };
}

export interface TracedCall {
  response: Response;
  /** The trace the request joined: the test's own traceparent's. */
  traceId: string;
}

/** Sends a request to `server` with a sampled traceparent of its own, so its trace is known. */
export async function callTraced(
  server: RunningServer,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<TracedCall> {
  const traceId = randomBytes(16).toString("hex");
  const parent = randomBytes(8).toString("hex");
  const response = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { ...init.headers, traceparent: `00-${traceId}-${parent}-01` },
  });
  return { response, traceId };
}

/**
 * The spans of `traceIds` once each trace's server span arrived, and a little longer: work a
 * request queued after its commit (notices, media copies) ends after its server span.
 */
export async function spansOfTraces(
  receiver: OtlpReceiver,
  traceIds: readonly string[],
  settleMs = 300,
): Promise<ReceivedSpan[]> {
  await receiver.waitFor((spans) =>
    traceIds.every((traceId) =>
      spans.some((span) => span.traceId === traceId && span.kind === SPAN_KIND.server),
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return receiver.spans.filter((span) => traceIds.includes(span.traceId));
}
