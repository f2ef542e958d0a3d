import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { CronExpressionParser } from "cron-parser";
import { createTask, type ScheduledTask } from "node-cron";
import type { JobRunnerDeps } from "./deps";
import { runJob, type JobDefinition, type RunOutcome } from "./runner";

export interface JobScheduler {
  instanceId: string;
  /** When a job fires next (in CRON_TIMEZONE), whether or not this instance runs it. */
  nextRun(jobName: string, after?: Date): Date | null;
  /** Stops firing and waits for runs in progress to finish. */
  stop(): Promise<void>;
}

/** The tick a firing belongs to: its scheduled time to the second, the same on every instance. */
export function tickOf(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** The first time after `after` that `schedule` fires in `timezone`. */
export function nextRunOf(schedule: string, timezone: string, after: Date): Date {
  return CronExpressionParser.parse(schedule, { tz: timezone, currentDate: after }).next().toDate();
}

/**
 * Schedules every job with node-cron in `timezone`. With `start` false nothing fires, but next
 * runs are still known (for /health/jobs on instances with jobs disabled).
 */
export function createJobScheduler(
  ctx: JobRunnerDeps,
  jobs: readonly JobDefinition[],
  options: { timezone: string; start: boolean; instanceId?: string },
): JobScheduler {
  const instanceId =
    options.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const inFlight = new Set<Promise<RunOutcome>>();
  const tasks = new Map<string, ScheduledTask>();

  for (const job of jobs) {
    const task = createTask(
      job.schedule,
      async (context) => {
        const run = runJob(ctx, job, { scheduledFor: tickOf(context.date), instanceId });
        inFlight.add(run);
        try {
          await run;
        } catch {
          // The claim itself failed (database down): nothing ran, the next tick tries again.
          // The runner logged it, inside the run's span (its trace id on the line).
        } finally {
          inFlight.delete(run);
        }
      },
      { name: job.name, timezone: options.timezone, noOverlap: true },
    );
    tasks.set(job.name, task);
    if (options.start) void task.start();
  }

  return {
    instanceId,
    nextRun: (jobName, after = ctx.clock.now()) => {
      const job = jobs.find((candidate) => candidate.name === jobName);
      return job ? nextRunOf(job.schedule, options.timezone, after) : null;
    },
    async stop() {
      for (const task of tasks.values()) await task.destroy();
      await Promise.allSettled([...inFlight]);
    },
  };
}
