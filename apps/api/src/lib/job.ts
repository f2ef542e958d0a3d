/**
 * What a scheduled job is, as a feature declares it beside its work (the feature's `module.ts`).
 * The runner and the scheduler (`jobs/`) run these; a job's `run` closes over its own
 * dependencies and is handed only the tick it belongs to.
 */
export interface JobRunContext {
  /** The tick this run belongs to (the scheduled time, or the start of a manual run). */
  scheduledFor: Date;
  /** "Now" for the job's selection, from the app's clock (tests move it). */
  now: Date;
}

export interface JobResult {
  rowsAffected: number;
  /** Anything worth keeping in the logs (counts per outcome, batches, ...). */
  summary?: Record<string, unknown>;
}

export interface JobDefinition {
  name: string;
  /** Cron expression, interpreted in CRON_TIMEZONE. */
  schedule: string;
  description: string;
  /** After this long a 'running' run is presumed dead (its instance crashed) and closed. */
  leaseMs: number;
  run(context: JobRunContext): Promise<JobResult>;
}
