/**
 * Runs scheduled jobs exactly once per tick across every API instance, never overlapping.
 *
 * Every instance's scheduler fires on every tick. Each firing tries to claim the tick in one
 * short transaction that holds a PostgreSQL advisory lock on the job's name, so claims of one
 * job are decided one at a time:
 *   1. a run still 'running' whose lease ran out (no heartbeat within it) belongs to a dead
 *      instance: close it as failed;
 *   2. a run still 'running' within its lease means the previous tick is not done: skip (overlap);
 *   3. insert this tick's run row; the unique (job_name, scheduled_for) index lets exactly one
 *      instance in, the others skip;
 *   4. the caller's `onClaimed` (a run asked for in the console writes its audit entry), so that
 *      what it records commits with the claim, before the job starts, or nothing runs.
 * The 'running' row (with a partial unique index: one running run per job) is the lock while the
 * job works, so no database transaction stays open while jobs call Recall or touch storage. The
 * instance running it renews that lock every third of the lease (`heartbeat_at`): a run longer
 * than its lease is not taken for dead while its instance lives, so the next tick never runs
 * beside it; a run whose instance died stops beating and is closed one lease later.
 */
import type { Prisma } from "@zigznote/database";
import { redactEmails } from "../lib/spanSanitizer";
import { inSpan, SpanStatusCode } from "../lib/tracing";
import { storableExcerpt } from "../lib/text";
import type { JobDefinition } from "../lib/job";
import type { JobRunnerDeps } from "./deps";

export type { JobDefinition, JobResult, JobRunContext } from "../lib/job";

export type RunOutcome =
  | { status: "succeeded"; runId: string; rowsAffected: number; durationMs: number }
  | { status: "failed"; runId: string; error: string; durationMs: number }
  | { status: "skipped"; reason: "already_ran_this_tick" | "previous_run_in_progress" };

export interface RunJobOptions {
  scheduledFor: Date;
  instanceId: string;
  /**
   * Called in the claim's transaction once this instance won the run, before the job starts: what
   * it writes commits with the claim or not at all (the console's audit entry of who asked for a
   * run, admin/actions.ts). Throwing gives the claim up: nothing runs.
   */
  onClaimed?: (tx: Prisma.TransactionClient, run: ClaimedRun) => Promise<void>;
}

/** A run this instance claimed, about to start. */
export interface ClaimedRun {
  runId: string;
  startedAt: Date;
}

async function claimRun(
  ctx: JobRunnerDeps,
  job: JobDefinition,
  options: RunJobOptions,
): Promise<{ runId: string } | { skipped: "already_ran_this_tick" | "previous_run_in_progress" }> {
  return ctx.db.$transaction(async (tx: Prisma.TransactionClient) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${`zigznote:job:${job.name}`}))`;
    const now = ctx.clock.now();
    await tx.$executeRaw`
      UPDATE job_runs
         SET outcome = 'failed', finished_at = ${now},
             error = 'abandoned: no result within the lease (instance stopped or crashed)'
       WHERE job_name = ${job.name} AND outcome = 'running'
         AND COALESCE(heartbeat_at, started_at) < ${new Date(now.getTime() - job.leaseMs)}`;
    const running = await tx.$queryRaw<{ id: string }[]>`
      SELECT id FROM job_runs WHERE job_name = ${job.name} AND outcome = 'running' LIMIT 1`;
    if (running.length > 0) return { skipped: "previous_run_in_progress" as const };
    const inserted = await tx.$queryRaw<{ id: string }[]>`
      INSERT INTO job_runs (job_name, scheduled_for, instance_id, started_at, outcome)
      VALUES (${job.name}, ${options.scheduledFor}, ${options.instanceId}, ${now}, 'running')
      ON CONFLICT (job_name, scheduled_for) DO NOTHING
      RETURNING id`;
    const runId = inserted[0]?.id;
    if (!runId) return { skipped: "already_ran_this_tick" as const };
    await options.onClaimed?.(tx, { runId, startedAt: now });
    return { runId };
  });
}

/**
 * Claims the tick and, if this instance won it, runs the job and records the outcome. Each call
 * is one span (`job <name>`, the root of its trace unless an admin's request started it), with
 * the claim, the job's statements and calls, and the record below it. A claim that fails (the
 * database down) is logged in that span and thrown.
 */
export async function runJob(
  ctx: JobRunnerDeps,
  job: JobDefinition,
  options: RunJobOptions,
): Promise<RunOutcome> {
  const attributes = {
    "zigznote.job.name": job.name,
    "zigznote.job.scheduled_for": options.scheduledFor.toISOString(),
    "zigznote.job.instance_id": options.instanceId,
  };
  return inSpan(`job ${job.name}`, { attributes }, async (span) => {
    const outcome = await claimAndRun(ctx, job, options);
    span.setAttribute("zigznote.job.outcome", outcome.status);
    if (outcome.status === "succeeded") {
      span.setAttribute("zigznote.job.rows_affected", outcome.rowsAffected);
    } else if (outcome.status === "failed") {
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
    } else {
      span.setAttribute("zigznote.job.skip_reason", outcome.reason);
    }
    return outcome;
  });
}

/**
 * Renews a run's lease every third of it while the job works (`heartbeat_at`), until the
 * returned stop is called. A failed beat is logged and the next one tries again; two missed in
 * a row leave a third of the lease.
 */
function startHeartbeat(ctx: JobRunnerDeps, job: JobDefinition, runId: string): () => void {
  let beating: Promise<void> | null = null;
  const beat = () => {
    if (beating) return; // the previous beat is still waiting for the database
    beating = ctx.db.$executeRaw`
        UPDATE job_runs SET heartbeat_at = ${ctx.clock.now()}
         WHERE id = ${runId}::uuid AND outcome = 'running'`
      .then(
        () => undefined,
        (error: unknown) => {
          ctx.logger.warn({ err: error, job: job.name, runId }, "job heartbeat failed");
        },
      )
      .finally(() => {
        beating = null;
      });
  };
  const timer = setInterval(beat, Math.max(1, Math.floor(job.leaseMs / 3)));
  // Never the reason a process stays up.
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Records how the run ended on its row. A row that is gone is the runner's failure, not the
 * caller's (Prisma's "record not found" would otherwise reach a console's "run now" as a 404).
 */
async function recordEnd(
  ctx: JobRunnerDeps,
  runId: string,
  data: {
    outcome: "succeeded" | "failed";
    finishedAt: Date;
    rowsAffected?: number;
    error?: string;
  },
): Promise<void> {
  const { count } = await ctx.db.jobRun.updateMany({ where: { id: runId }, data });
  if (count !== 1) throw new Error(`the job run ${runId} is gone: its end could not be recorded`);
}

/**
 * A failed run's error as it is recorded and answered (the run's row, the console's "run now"
 * and its audit entry). It is shown to platform admins (the public GET /health/jobs never shows
 * it): a provider's message quoting a customer's address (an SMTP refusal, say) does not reach
 * even them. U+0000, which PostgreSQL's text cannot hold (a binary provider answer quoted in a
 * message), becomes U+FFFD: otherwise the failure itself could not be recorded, and the run would
 * stay 'running' until its lease ended.
 */
function recordableError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return storableExcerpt(redactEmails(message), 2000);
}

async function claimAndRun(
  ctx: JobRunnerDeps,
  job: JobDefinition,
  options: RunJobOptions,
): Promise<RunOutcome> {
  let claim: Awaited<ReturnType<typeof claimRun>>;
  try {
    claim = await claimRun(ctx, job, options);
  } catch (error) {
    // Nothing ran (the database refused the claim); the next tick tries again. Logged here,
    // inside the run's span, so that the line carries the run's trace, and thrown to the caller.
    ctx.logger.error({ err: error, job: job.name }, "job could not be claimed");
    throw error;
  }
  if ("skipped" in claim) {
    ctx.metrics.jobRuns.inc({ job_name: job.name, outcome: "skipped" });
    ctx.logger.debug({ job: job.name, reason: claim.skipped }, "job run skipped");
    return { status: "skipped", reason: claim.skipped };
  }

  const started = performance.now();
  const endTimer = ctx.metrics.jobDuration.startTimer({ job_name: job.name });
  const stopHeartbeat = startHeartbeat(ctx, job, claim.runId);
  try {
    const result = await job.run({ scheduledFor: options.scheduledFor, now: ctx.clock.now() });
    stopHeartbeat();
    const durationMs = performance.now() - started;
    await recordEnd(ctx, claim.runId, {
      outcome: "succeeded",
      finishedAt: ctx.clock.now(),
      rowsAffected: result.rowsAffected,
    });
    endTimer();
    ctx.metrics.jobRuns.inc({ job_name: job.name, outcome: "succeeded" });
    ctx.metrics.jobRowsAffected.inc({ job_name: job.name }, result.rowsAffected);
    ctx.logger.info(
      {
        job: job.name,
        runId: claim.runId,
        rowsAffected: result.rowsAffected,
        durationMs,
        ...result.summary,
      },
      "job run succeeded",
    );
    return {
      status: "succeeded",
      runId: claim.runId,
      rowsAffected: result.rowsAffected,
      durationMs,
    };
  } catch (error) {
    stopHeartbeat();
    const durationMs = performance.now() - started;
    const recorded = recordableError(error);
    await recordEnd(ctx, claim.runId, {
      outcome: "failed",
      finishedAt: ctx.clock.now(),
      error: recorded,
    });
    endTimer();
    ctx.metrics.jobRuns.inc({ job_name: job.name, outcome: "failed" });
    ctx.logger.error({ err: error, job: job.name, runId: claim.runId }, "job run failed");
    return { status: "failed", runId: claim.runId, error: recorded, durationMs };
  }
}
