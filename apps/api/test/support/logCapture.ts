import { createLogger, type Logger } from "../../src/lib/logger";
import { createTestApp, type TestApp } from "./helpers";

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

/**
 * Registers the calling file's hooks: a test app logging into memory at debug level, handed to
 * `use` before its tests (jest hooks cannot return it) and closed after them.
 */
export function useTestAppWithCapturedLogs(
  use: (started: { testApp: TestApp; logs: CapturedLogs }) => void,
): void {
  let testApp: TestApp | undefined;
  beforeAll(() => {
    const logs = captureLogs("debug");
    testApp = createTestApp({ logger: logs.logger });
    use({ testApp, logs });
  });
  afterAll(() => testApp?.close());
}
