import type { Express } from "express";
import { createApp } from "../src/app";
import { buildContext, type AppContext } from "../src/context";
import { createLogger, type Logger } from "../src/lib/logger";
import type { TestApp } from "./helpers";

/** One parsed log line. */
export type LogEntry = Record<string, unknown> & { level: number; msg?: string };

export interface CapturedLogs {
  logger: Logger;
  /** Every line as written. */
  lines: string[];
  entries(): LogEntry[];
}

/** A logger with the app's own settings (redaction included) that writes into memory. */
export function captureLogs(level = "debug"): CapturedLogs {
  const lines: string[] = [];
  const destination = {
    write(chunk: string) {
      lines.push(...chunk.split("\n").filter((line) => line !== ""));
    },
  };
  return {
    logger: createLogger(level, {}, destination),
    lines,
    entries: () => lines.map((line) => JSON.parse(line) as LogEntry),
  };
}

/**
 * `testApp`'s configuration, database and storage in a second context whose every service logs
 * into `logs`, and its app.
 */
export function appLoggingTo(
  testApp: TestApp,
  logs: CapturedLogs,
): { ctx: AppContext; app: Express } {
  const ctx = buildContext({
    config: testApp.ctx.config,
    db: testApp.ctx.db,
    storage: testApp.ctx.storage,
    clock: testApp.ctx.clock,
    logger: logs.logger,
  });
  return { ctx, app: createApp(ctx) };
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;
