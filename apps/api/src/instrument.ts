/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured (OBSERVABILITY.md in
 * project_docs). It must run before the modules it instruments (http, pg, ioredis) are loaded,
 * so it is the first import of `server.ts` and of the `job` command; `node --require
 * ./dist/instrument.js ...` works as well (a module runs once).
 *
 * With no endpoint (or OTEL_SDK_DISABLED=true) it does nothing else: the SDK is not even
 * loaded, and the API's spans (`lib/tracing.ts`) stay no-ops.
 *
 * It reads the process environment itself, before `config.ts` (which loads the database
 * package, and with it pg) can; the variables are the same ones `config.ts` validates.
 */
import { parseTracingEnv, type TracingSettings } from "./lib/tracingConfig";
import type * as TracingSdk from "./lib/tracingSdk";
import type { Tracing } from "./lib/tracingSdk";

function startFromEnvironment(): Tracing | null {
  let settings: TracingSettings | null;
  try {
    settings = parseTracingEnv(process.env);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
  if (settings === null) return null;
  // Required here, not imported at the top: with tracing off, none of the SDK is loaded.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require("./lib/tracingSdk") as typeof TracingSdk;
  return sdk.startTracing(settings);
}

/** This process's tracing, or null when it is off. */
export const tracing: Tracing | null = startFromEnvironment();
