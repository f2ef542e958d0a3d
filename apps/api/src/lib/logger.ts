import pino, { type Logger } from "pino";
import { traceLogFields } from "./tracing";

export type { Logger };

/**
 * Structured JSON logs. Credentials never reach a log line: authorization headers, cookies,
 * webhook signatures and any field named like a secret are redacted. A line written inside a
 * traced request, job run or delivery carries its `traceId` and `spanId`.
 */
export function createLogger(
  level: string,
  base: Record<string, unknown> = {},
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "zigznote-api", ...base },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: traceLogFields,
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        'req.headers["stripe-signature"]',
        'req.headers["svix-signature"]',
        'req.headers["webhook-signature"]',
        'res.headers["set-cookie"]',
        "*.secret",
        "*.apiKey",
        "*.password",
        "*.token",
      ],
      censor: "[redacted]",
    },
  };
  // Default: stdout. Tests pass a stream to read what would be logged.
  return destination ? pino(options, destination) : pino(options);
}
