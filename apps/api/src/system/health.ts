import type { AppContext } from "../context";
import { z } from "../http/openapi";
import { defineRoute, type RouteDefinition } from "../http/route";
import { nextRunOf, type JobDefinition } from "../jobs";
import type { Logger } from "../lib/logger";
import { withTimeout } from "../lib/withTimeout";
import { API_VERSION } from "../version";

const DependencyState = z.object({
  status: z.enum(["up", "down", "not_configured"]),
  latencyMs: z.number().optional(),
});

export const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded", "unavailable"]),
    version: z.string(),
    uptimeSeconds: z.number(),
    checks: z.object({ database: DependencyState, redis: DependencyState }),
  })
  .openapi("Health");

const JobRunSchema = z.object({
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
  outcome: z.enum(["running", "succeeded", "failed", "skipped"]),
  rowsAffected: z.number(),
  // Both kept (always null) so that readers of the fields get null rather than a missing key,
  // and typed null so that this handler cannot fill them: this route answers anyone. A failed
  // run's message can quote SQL, hosts, provider bodies or customers' ids; the scheduler's
  // instance id starts with its host name. `outcome` says a run failed; the admin API says why.
  error: z.null().openapi({
    enum: [null],
    description:
      "Always null: a failed run's error message is not public. Platform admins read it in " +
      "the console's job runs, or at GET /api/v1/admin/job-runs?jobName=…&outcome=failed",
  }),
  instanceId: z.null().openapi({
    enum: [null],
    description:
      "Always null: which instance ran it (its host name) is not public. Platform admins read " +
      "it at GET /api/v1/admin/job-runs",
  }),
});

export const JobsHealthSchema = z
  .object({
    enabled: z.boolean().openapi({ description: "Whether this instance schedules jobs" }),
    timezone: z.string(),
    jobs: z.array(
      z.object({
        name: z.string(),
        schedule: z.string(),
        description: z.string(),
        lastRun: JobRunSchema.nullable(),
        nextRunAt: z.string(),
      }),
    ),
  })
  .openapi("JobsHealth");

type DependencyState = z.infer<typeof DependencyState>;

/**
 * Probes one dependency. The reason it is down goes to the log, not into the answer: `/health`
 * answers anyone, and a driver's message names the host and port it could not reach. It is
 * logged when the dependency goes down (and when it is back), not at every poll of a load
 * balancer.
 */
function dependencyProbe(
  name: "database" | "redis",
  logger: Logger,
): (check: () => Promise<unknown>) => Promise<DependencyState> {
  let wasDown = false;
  return async (check) => {
    const started = performance.now();
    try {
      await withTimeout(check(), 2_000);
      if (wasDown) logger.info({ dependency: name }, `health: ${name} is up again`);
      wasDown = false;
      return { status: "up", latencyMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (error) {
      if (!wasDown) logger.warn({ dependency: name, err: error }, `health: ${name} is down`);
      wasDown = true;
      return { status: "down" };
    }
  };
}

/** `/health` (liveness and dependencies) and `/health/jobs` (each job's last and next run). */
export function healthRoutes(
  ctx: Pick<AppContext, "db" | "redis" | "clock" | "config" | "logger"> & {
    jobs: readonly JobDefinition[];
  },
): RouteDefinition[] {
  const startedAt = Date.now();
  const probeDatabase = dependencyProbe("database", ctx.logger);
  const probeRedis = dependencyProbe("redis", ctx.logger);
  return [
    defineRoute({
      method: "get",
      path: "/health",
      operationId: "getHealth",
      tag: "Operations",
      auth: "none",
      summary: "Liveness and dependency state",
      description:
        "200 while the database answers (Redis down only degrades); 503 when it does not. " +
        "Unauthenticated: why a dependency is down is logged by the instance, not shown here.",
      responses: {
        200: { description: "Serving", schema: HealthSchema },
        503: { description: "Database unreachable", schema: HealthSchema },
      },
      async handler() {
        const [database, redis] = await Promise.all([
          probeDatabase(() => ctx.db.$queryRaw`SELECT 1`),
          ctx.redis
            ? probeRedis(() => ctx.redis!.ping())
            : Promise.resolve<DependencyState>({ status: "not_configured" }),
        ]);
        const status =
          database.status !== "up" ? "unavailable" : redis.status === "down" ? "degraded" : "ok";
        return {
          status: status === "unavailable" ? 503 : 200,
          body: {
            status,
            version: API_VERSION,
            uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
            checks: { database, redis },
          },
        };
      },
    }),

    defineRoute({
      method: "get",
      path: "/health/jobs",
      operationId: "getJobsHealth",
      tag: "Operations",
      auth: "none",
      summary: "Each scheduled job's last run (any instance) and next run",
      description:
        "Unauthenticated, for load balancers, uptime checks and on-call: names, schedules, last " +
        "and next runs and outcomes. A failed run's error message and the instance that ran " +
        "it are not shown here (`lastRun.error` and `lastRun.instanceId` are always null); " +
        "platform admins read them at GET /api/v1/admin/job-runs.",
      responses: { 200: { description: "Job state", schema: JobsHealthSchema } },
      async handler() {
        const now = ctx.clock.now();
        const lastRuns = await ctx.db.$queryRaw<
          {
            job_name: string;
            started_at: Date;
            finished_at: Date | null;
            outcome: "running" | "succeeded" | "failed" | "skipped";
            rows_affected: number;
          }[]
        >`
          SELECT DISTINCT ON (job_name) job_name, started_at, finished_at, outcome, rows_affected
            FROM job_runs
           WHERE job_name = ANY(${ctx.jobs.map((job) => job.name)}::text[])
           ORDER BY job_name, started_at DESC`;
        const byName = new Map(lastRuns.map((run) => [run.job_name, run]));
        return {
          status: 200,
          body: {
            enabled: ctx.config.JOBS_ENABLED,
            timezone: ctx.config.CRON_TIMEZONE,
            jobs: ctx.jobs.map((job) => {
              const run = byName.get(job.name);
              return {
                name: job.name,
                schedule: job.schedule,
                description: job.description,
                lastRun: run
                  ? {
                      startedAt: run.started_at.toISOString(),
                      finishedAt: run.finished_at?.toISOString() ?? null,
                      outcome: run.outcome,
                      rowsAffected: run.rows_affected,
                      error: null,
                      instanceId: null,
                    }
                  : null,
                nextRunAt: nextRunOf(job.schedule, ctx.config.CRON_TIMEZONE, now).toISOString(),
              };
            }),
          },
        };
      },
    }),
  ];
}
