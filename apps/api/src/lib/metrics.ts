import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

/**
 * Prometheus metrics of one app instance (its own registry, so tests can run several). A job's
 * name is the label `job_name`, never `job`: Prometheus gives every scraped series the target's
 * own `job` label, and a metric's `job` would be renamed `exported_job`.
 */
export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<"method" | "route" | "status_code">;
  /** Job runs by outcome: succeeded, failed, or skipped (another instance had the tick). */
  jobRuns: Counter<"job_name" | "outcome">;
  jobDuration: Histogram<"job_name">;
  jobRowsAffected: Counter<"job_name">;
  /** Webhook deliveries by provider and outcome (processed, duplicate, unhandled, failed, ...). */
  webhookEvents: Counter<"provider" | "outcome">;
  /** Outbox rows by notice type and delivery outcome (sent, retried, failed, skipped). */
  notices: Counter<"type" | "outcome">;
  /** Requests refused with 429 RATE_LIMITED, by what was counted (organization or address). */
  rateLimited: Counter<"subject">;
  /** Counts the rate limit store (Redis) failed to make: those requests were served uncounted. */
  rateLimitStoreErrors: Counter;
  /**
   * 429 answers by route template and error code: lockouts, rate limits and anything else that
   * tells a client to slow down, counted where every answer passes (alerts, dashboard).
   */
  httpRateLimited: Counter<"route" | "error_code">;
  /** API key attempts that failed (unknown, revoked, expired or wrong secret). */
  apiKeyFailures: Counter;
  /** Lockouts started: a (client address, key id) pair or a whole address reached its limit. */
  apiKeyLockouts: Counter<"kind">;
  /** Recording imports that resumed a copy from the bytes an earlier attempt stored. */
  recordingImportResumes: Counter;
  /** Bytes those resumptions did not download again (where each resumed from). */
  recordingImportResumedBytes: Counter;
  /** Copies started again from byte 0 though parts were stored, by why. */
  recordingImportRestarts: Counter<"reason">;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpRequestDuration = new Histogram({
    name: "http_request_duration_seconds",
    help: "Duration of HTTP requests by method, route pattern and status code",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobRuns = new Counter({
    name: "zigznote_job_runs_total",
    help: "Scheduled job runs in this instance by job and outcome",
    labelNames: ["job_name", "outcome"] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: "zigznote_job_duration_seconds",
    help: "Duration of job runs executed by this instance",
    labelNames: ["job_name"] as const,
    // Up to an hour: an import of long recordings or a cleanup's backlog runs for many minutes,
    // and a run beyond the last bucket only shows as that bucket in a quantile.
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600],
    registers: [registry],
  });
  const jobRowsAffected = new Counter({
    name: "zigznote_job_rows_affected_total",
    help: "Rows changed by job runs executed by this instance",
    labelNames: ["job_name"] as const,
    registers: [registry],
  });
  const webhookEvents = new Counter({
    name: "webhook_events_total",
    help: "Webhook deliveries by provider and outcome",
    labelNames: ["provider", "outcome"] as const,
    registers: [registry],
  });
  const notices = new Counter({
    name: "zigznote_notices_total",
    help: "Notices handled by this instance's deliverers by type and outcome",
    labelNames: ["type", "outcome"] as const,
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: "zigznote_rate_limited_total",
    help: "Requests refused because their organization's (or address's) budget was spent",
    labelNames: ["subject"] as const,
    registers: [registry],
  });
  const rateLimitStoreErrors = new Counter({
    name: "zigznote_rate_limit_store_errors_total",
    help: "Requests served without counting them because the rate limit store (Redis) failed",
    registers: [registry],
  });
  const httpRateLimited = new Counter({
    name: "zigznote_http_rate_limited_total",
    help: "Responses with status 429 by route pattern and error code",
    labelNames: ["route", "error_code"] as const,
    registers: [registry],
  });
  const apiKeyFailures = new Counter({
    name: "zigznote_api_key_failures_total",
    help: "Failed API key authentication attempts in this instance",
    registers: [registry],
  });
  const apiKeyLockouts = new Counter({
    name: "zigznote_api_key_lockouts_total",
    help: "API key lockouts started by this instance, by kind (pair: address and key id; ip: address)",
    labelNames: ["kind"] as const,
    registers: [registry],
  });
  const recordingImportResumes = new Counter({
    name: "zigznote_recording_import_resumes_total",
    help: "Recording imports this instance resumed from the parts an earlier attempt stored",
    registers: [registry],
  });
  const recordingImportResumedBytes = new Counter({
    name: "zigznote_recording_import_resumed_bytes_total",
    help: "Bytes of recording imports that resumed and were not downloaded again",
    registers: [registry],
  });
  const recordingImportRestarts = new Counter({
    name: "zigznote_recording_import_restarts_total",
    help: "Recording imports that started again from byte 0, dropping stored parts, by reason",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  return {
    registry,
    recordingImportResumes,
    recordingImportResumedBytes,
    recordingImportRestarts,
    rateLimited,
    rateLimitStoreErrors,
    httpRequestDuration,
    jobRuns,
    jobDuration,
    jobRowsAffected,
    webhookEvents,
    notices,
    httpRateLimited,
    apiKeyFailures,
    apiKeyLockouts,
  };
}
