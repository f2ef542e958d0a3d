/**
 * Starts OpenTelemetry tracing when an OTLP endpoint is configured (OBSERVABILITY.md in
 * project_docs). It must run before the modules it instruments (http, pg, ioredis) are loaded,
 * so it is the first import of `server.ts` and of the `job` command; `node --require
 * ./dist/instrument.js ...` works as well (a module runs once).
 *
 * With no endpoint (or OTEL_SDK_DISABLED=true) it does nothing else: the SDK is not even
 * loaded, and the API's spans (`lib/tracing.ts`) stay no-ops.
 *
 * It reads the OTEL_* variables itself, before `config.ts` (which loads the database package,
 * and with it pg) can. A value it cannot use is warned about and its default used: tracing
 * never stops the API from starting.
 */
import { parseTracingEnv } from "./lib/tracingConfig";
import type * as TracingSdk from "./lib/tracingSdk";
import type { Tracing } from "./lib/tracingSdk";

/**
 * Writes the ignored values as one warning, at once, to stderr, shaped like the logger's lines
 * (`lib/logger.ts`: level 40, time, service, msg). Not deferred to the app's logger
 * (`reportProblemsTo`): an invalid endpoint leaves tracing off, so there is no handle to defer
 * to, and a start that fails before the logger exists (an invalid app variable, a database
 * down) must still say it. stderr, where this module reported before, keeps the `job`
 * command's stdout (its result line) as it was; it is written whatever LOG_LEVEL says, which is
 * not read yet (as `config.ts`'s refusals are).
 */
function warnAboutIgnoredValues(problems: string[]): void {
  if (problems.length === 0) return;
  const line = {
    level: 40,
    time: new Date().toISOString(),
    service: "zigznote-api",
    problems,
    msg: "tracing: ignored OTEL_* values it cannot use (their defaults apply)",
  };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

function startFromEnvironment(): Tracing | null {
  const { settings, problems } = parseTracingEnv(process.env);
  warnAboutIgnoredValues(problems);
  if (settings === null) return null;
  // Required here, not imported at the top: with tracing off, none of the SDK is loaded.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sdk = require("./lib/tracingSdk") as typeof TracingSdk;
  return sdk.startTracing(settings);
}

/** This process's tracing, or null when it is off. */
export const tracing: Tracing | null = startFromEnvironment();
