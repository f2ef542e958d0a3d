import type { AppContext } from "../context";
import {
  escalateExpiredStorageGrace,
  recheckRecordedViolations,
  suspendExpiredGracePeriods,
  warnExpiringCards,
  warnStorageGraceEnding,
} from "../billing";
import { cleanupOrphanedBots, type RecallClient } from "../bots";
import { cleanupOrphanedStorage, processDueRecordingImports } from "../recordings";
import { cleanupOldWebhooks } from "../webhooks";
import { deleteExpiredIdempotencyKeys } from "../http/idempotencyStore";
import type { JobDefinition } from "./runner";
import { MINUTE_MS } from "../lib/time";

export { runJob, type JobDefinition, type JobResult, type RunOutcome } from "./runner";
export { createJobScheduler, nextRunOf, type JobScheduler } from "./scheduler";
export type { JobRunnerDeps } from "./deps";

const MINUTE = MINUTE_MS;

/** What runs when (cron, in CRON_TIMEZONE); the run functions are attached by `createJobs`. */
export const JOB_SCHEDULES = [
  {
    name: "cleanupOrphanedBots",
    schedule: "*/5 * * * *",
    leaseMs: 15 * MINUTE,
    description: "End bots stuck without a status change (checked with Recall first)",
  },
  {
    name: "cleanupOldWebhooks",
    schedule: "0 3 * * *",
    leaseMs: 60 * MINUTE,
    description: "Delete processed-webhook records older than WEBHOOK_RETENTION_DAYS",
  },
  {
    name: "deleteExpiredIdempotencyKeys",
    schedule: "20 * * * *",
    leaseMs: 30 * MINUTE,
    description: "Delete Idempotency-Key answers older than IDEMPOTENCY_KEY_TTL_HOURS, in batches",
  },
  {
    name: "cleanupOrphanedStorage",
    schedule: "0 4 * * *",
    leaseMs: 120 * MINUTE,
    description: "Purge recordings of meetings deleted more than STORAGE_PURGE_AFTER_DAYS ago",
  },
  {
    name: "checkExpiredGracePeriods",
    schedule: "0 * * * *",
    leaseMs: 30 * MINUTE,
    description: "Suspend past_due subscriptions whose payment grace period is over",
  },
  {
    name: "checkStorageGracePeriods",
    schedule: "10 * * * *",
    leaseMs: 30 * MINUTE,
    description:
      "Make storage violations read-only once their grace period is over; warn 24 h before",
  },
  {
    name: "recheckPlanViolations",
    schedule: "5 0 * * *",
    leaseMs: 60 * MINUTE,
    description: "Re-check recorded plan violations (a new month resolves meeting limits)",
  },
  {
    name: "warnExpiringCards",
    schedule: "15 8 * * *",
    leaseMs: 30 * MINUTE,
    description:
      "E-mail admins 30 and 7 days before the card paying a renewing subscription expires",
  },
  {
    name: "deliverNotifications",
    schedule: "* * * * *",
    leaseMs: 10 * MINUTE,
    description: "Send pending notices from the outbox (those not sent right after commit)",
  },
  {
    name: "retryRecordingImports",
    schedule: "*/5 * * * *",
    leaseMs: 60 * MINUTE,
    description: "Copy Recall recordings whose first copy failed (backoff per recording)",
  },
] as const;

export type JobName = (typeof JOB_SCHEDULES)[number]["name"];

/**
 * The jobs of this app, ready for the scheduler, the runner or the `job` command: the schedule
 * table above, each entry run by the feature that owns the work.
 */
export function createJobs(ctx: AppContext, deps: { recall?: RecallClient } = {}): JobDefinition[] {
  const settings = ctx.billing.settings;
  // The outbox delivers what a job queues after each commit; a run ends once that is done, so
  // its record (and a caller waiting for it) sees the notices sent.
  const noticesSent = () => ctx.notices.idle();
  const runs: Record<JobName, JobDefinition["run"]> = {
    cleanupOrphanedBots: ({ now }) =>
      cleanupOrphanedBots(
        { ...ctx.stuckBots, recall: deps.recall ?? ctx.stuckBots.recall },
        { now },
      ),
    cleanupOldWebhooks: async ({ now }) => ({
      rowsAffected: await cleanupOldWebhooks(
        ctx.db,
        ctx.config.WEBHOOK_RETENTION_DAYS,
        now,
        ctx.config.JOB_BATCH_SIZE,
      ),
    }),
    deleteExpiredIdempotencyKeys: async ({ now }) => ({
      rowsAffected: await deleteExpiredIdempotencyKeys(ctx.db, {
        now,
        batchSize: ctx.config.JOB_BATCH_SIZE,
      }),
    }),
    cleanupOrphanedStorage: async ({ now }) => {
      const result = await cleanupOrphanedStorage(ctx.storagePurge, { now });
      await noticesSent();
      return result;
    },
    checkExpiredGracePeriods: async ({ now }) => {
      const suspended = await suspendExpiredGracePeriods(ctx, { now });
      await noticesSent();
      return { rowsAffected: suspended.length };
    },
    checkStorageGracePeriods: async ({ now }) => {
      const escalated = await escalateExpiredStorageGrace({ db: ctx.db, settings }, { now });
      const warned = await warnStorageGraceEnding({ db: ctx.db, settings }, { now });
      await noticesSent();
      return {
        rowsAffected: escalated.length,
        summary: { escalated: escalated.length, warned: warned.length },
      };
    },
    warnExpiringCards: async ({ now }) => {
      const result = await warnExpiringCards({ db: ctx.db, settings }, { now });
      await noticesSent();
      return { rowsAffected: result.queued, summary: { ...result } };
    },
    recheckPlanViolations: async ({ now }) => ({
      rowsAffected: await recheckRecordedViolations({ db: ctx.db, settings }, { now }),
    }),
    retryRecordingImports: async () => {
      const result = await processDueRecordingImports(ctx.recordingImports, {
        batchSize: ctx.config.JOB_BATCH_SIZE,
        concurrency: ctx.config.JOB_CONCURRENCY,
      });
      return { rowsAffected: result.done, summary: { ...result } };
    },
    deliverNotifications: async ({ now }) => {
      const result = await ctx.notices.deliverNow(now);
      return { rowsAffected: result.sent, summary: { ...result } };
    },
  };
  return JOB_SCHEDULES.map((job) => ({ ...job, run: runs[job.name] }));
}
