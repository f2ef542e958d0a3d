import { createLogger, type Logger } from "../../src/lib/logger";

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

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;
