import { activeBotSql } from "@zigznote/database";
import { Gauge, type Registry } from "prom-client";
import type { AppContext } from "../context";
import { nextRunOf } from "../jobs";
import { REDIS_COMMAND_TIMEOUT_MS } from "../lib/redisOptions";
import { withTimeout } from "../lib/withTimeout";

/**
 * Gauges read when `/metrics` is scraped. Whether this instance reaches the database and Redis
 * (when configured); then the state the instances share, read from the database: each job's last
 * success and last outcome, the outbox backlog, active and stuck bots, subscriptions by status.
 * Every instance reports the same shared values (they describe the database, not the instance),
 * so rules and panels take `max()` across instances.
 * The alert rules in deploy/prometheus/alerts.yml and the dashboard in deploy/grafana read them.
 *
 * One refresh serves the whole scrape (the gauges' collect calls share it); a failed query
 * leaves its gauges empty rather than stale, and the scrape still answers.
 */

type StateMetricsDeps = Pick<AppContext, "db" | "redis" | "clock" | "config" | "metrics" | "jobs">;

/** How long a statement of a scrape may take before its gauges are left empty. */
const QUERY_TIMEOUT_MS = 2_000;

const registered = new WeakSet<Registry>();

/**
 * Leaves a gauge without any value (a gauge without labels would otherwise report 0 after a
 * reset): a state that could not be read is not reported as zero.
 */
function clear(gauge: Gauge<string>, isLabelled: boolean): void {
  gauge.reset();
  if (!isLabelled) gauge.remove();
}

/** The longest gap between two runs of `schedule` over its next runs (cron gaps can vary). */
export function longestIntervalSeconds(schedule: string, timezone: string, from: Date): number {
  let longest = 0;
  let previous = nextRunOf(schedule, timezone, from);
  for (let i = 0; i < 10; i += 1) {
    const next = nextRunOf(schedule, timezone, previous);
    longest = Math.max(longest, next.getTime() - previous.getTime());
    previous = next;
  }
  return longest / 1000;
}

/** Registers the gauges on the app's registry (once per registry). */
export function registerStateMetrics(deps: StateMetricsDeps): void {
  const registry = deps.metrics.registry;
  if (registered.has(registry)) return;
  registered.add(registry);
  const registers = [registry];
  // Every gauge's collect runs the scrape's one refresh (defined below, called at scrape time).
  const collect = (): Promise<void> => refreshOnce();

  const databaseUp = new Gauge({
    name: "zigznote_database_up",
    help: "1 when the database answered SELECT 1 within 2 s at this scrape, else 0",
    registers,
    collect,
  });
  // Absent without REDIS_URL (clear()): an instance without Redis is not one that lost it.
  const redisUp = new Gauge({
    name: "zigznote_redis_up",
    help: `1 when Redis answered PING at this scrape (within ${REDIS_COMMAND_TIMEOUT_MS} ms), else 0; absent without REDIS_URL`,
    registers,
    collect,
  });
  const jobInterval = new Gauge({
    name: "zigznote_job_interval_seconds",
    help: "Longest time between two scheduled runs of the job (from its cron schedule)",
    labelNames: ["job_name"] as const,
    registers,
  });
  const jobLastSuccess = new Gauge({
    name: "zigznote_job_last_success_timestamp_seconds",
    help: "When the job last finished successfully, in any instance (Unix time); 0 when it never has",
    labelNames: ["job_name"] as const,
    registers,
    collect,
  });
  const jobLastFailed = new Gauge({
    name: "zigznote_job_last_run_failed",
    help: "1 when the job's latest finished run (any instance) failed, 0 when it succeeded",
    labelNames: ["job_name"] as const,
    registers,
    collect,
  });
  const noticesPending = new Gauge({
    name: "zigznote_notices_pending",
    help: "Notices in the outbox waiting to be sent (new, or retrying after a failure)",
    registers,
    collect,
  });
  const noticesOldestPending = new Gauge({
    name: "zigznote_notices_oldest_pending_age_seconds",
    help: "Age of the oldest notice waiting to be sent (0 when none is waiting)",
    registers,
    collect,
  });
  const botsActive = new Gauge({
    name: "zigznote_bots_active",
    help: "Active (not ended) bots by status",
    labelNames: ["status"] as const,
    registers,
    collect,
  });
  const botsStuck = new Gauge({
    name: "zigznote_bots_stuck",
    help: "Active bots, recording ones aside, without a status change for longer than STUCK_BOT_AFTER_MINUTES",
    registers,
    collect,
  });
  const subscriptions = new Gauge({
    name: "zigznote_subscriptions",
    help: "Subscriptions by status (billing standing: active, trialing, past_due, suspended, ...)",
    labelNames: ["status"] as const,
    registers,
    collect,
  });

  // Fixed by the schedule table: set once.
  for (const job of deps.jobs) {
    jobInterval.set(
      { job_name: job.name },
      longestIntervalSeconds(job.schedule, deps.config.CRON_TIMEZONE, deps.clock.now()),
    );
  }

  const jobNames = deps.jobs.map((job) => job.name);
  const readJobs = async () => {
    const rows = await deps.db.$queryRaw<
      { job_name: string; last_success: Date | null; last_outcome: string | null }[]
    >`
      SELECT j.name AS job_name,
             (SELECT finished_at FROM job_runs
               WHERE job_name = j.name AND outcome = 'succeeded'
               ORDER BY started_at DESC LIMIT 1) AS last_success,
             (SELECT outcome::text FROM job_runs
               WHERE job_name = j.name AND outcome IN ('succeeded', 'failed')
               ORDER BY started_at DESC LIMIT 1) AS last_outcome
        FROM unnest(${jobNames}::text[]) AS j(name)`;
    jobLastSuccess.reset();
    jobLastFailed.reset();
    for (const row of rows) {
      // 0 for a job that never succeeded: a reading, unlike an absent series (its state could
      // not be read). ZigznoteJobNotRunning measures such a job from the oldest instance's start.
      jobLastSuccess.set(
        { job_name: row.job_name },
        row.last_success ? row.last_success.getTime() / 1000 : 0,
      );
      if (row.last_outcome) {
        jobLastFailed.set({ job_name: row.job_name }, row.last_outcome === "failed" ? 1 : 0);
      }
    }
  };
  const readNotices = async (now: Date) => {
    const rows = await deps.db.$queryRaw<{ pending: number; oldest: Date | null }[]>`
      SELECT count(*)::int AS pending, min(created_at) AS oldest
        FROM notification_outbox WHERE status = 'pending'`;
    const row = rows[0];
    noticesPending.set(row?.pending ?? 0);
    noticesOldestPending.set(
      row?.oldest ? Math.max(0, (now.getTime() - row.oldest.getTime()) / 1000) : 0,
    );
  };
  const readBots = async (now: Date) => {
    const cutoff = new Date(now.getTime() - deps.config.STUCK_BOT_AFTER_MINUTES * 60_000);
    // A bot recording keeps its status for the whole meeting: a long meeting is not stuck (the
    // stuck-bot job checks it with Recall and leaves it alone), so it is not counted.
    const rows = await deps.db.$queryRaw<{ status: string; active: number; stuck: number }[]>`
      SELECT status::text AS status, count(*)::int AS active,
             count(*) FILTER (WHERE last_status_at < ${cutoff}
                                AND status <> 'in_call_recording')::int AS stuck
        FROM bots WHERE ${activeBotSql}
       GROUP BY status`;
    botsActive.reset();
    let stuck = 0;
    for (const row of rows) {
      botsActive.set({ status: row.status }, row.active);
      stuck += row.stuck;
    }
    botsStuck.set(stuck);
  };
  const readSubscriptions = async () => {
    const rows = await deps.db.$queryRaw<{ status: string; count: number }[]>`
      SELECT status::text AS status, count(*)::int AS count FROM subscriptions GROUP BY status`;
    subscriptions.reset();
    for (const row of rows) subscriptions.set({ status: row.status }, row.count);
  };

  const stateGauges = [
    jobLastSuccess,
    jobLastFailed,
    noticesPending,
    noticesOldestPending,
    botsActive,
    botsStuck,
    subscriptions,
  ];
  const labelled = new Set<Gauge<string>>([
    jobLastSuccess,
    jobLastFailed,
    botsActive,
    subscriptions,
  ]);
  const refreshRedis = async () => {
    if (!deps.redis) {
      clear(redisUp, false);
      return;
    }
    try {
      await withTimeout(deps.redis.ping(), QUERY_TIMEOUT_MS);
      redisUp.set(1);
    } catch {
      redisUp.set(0);
    }
  };
  const refreshDatabase = async () => {
    try {
      await withTimeout(deps.db.$queryRaw`SELECT 1`, QUERY_TIMEOUT_MS);
      databaseUp.set(1);
    } catch {
      databaseUp.set(0);
      for (const gauge of stateGauges) clear(gauge, labelled.has(gauge));
      return;
    }
    const now = deps.clock.now();
    const readers: [() => Promise<void>, Gauge[]][] = [
      [readJobs, [jobLastSuccess, jobLastFailed]],
      [() => readNotices(now), [noticesPending, noticesOldestPending]],
      [() => readBots(now), [botsActive, botsStuck]],
      [readSubscriptions, [subscriptions]],
    ];
    await Promise.all(
      readers.map(async ([read, gauges]) => {
        try {
          await withTimeout(read(), QUERY_TIMEOUT_MS);
        } catch {
          for (const gauge of gauges) clear(gauge, labelled.has(gauge));
        }
      }),
    );
  };

  const refresh = async () => {
    await Promise.all([refreshDatabase(), refreshRedis()]);
  };

  // prom-client collects a scrape's metrics all at once: those calls share one refresh.
  let inFlight: Promise<void> | null = null;
  function refreshOnce(): Promise<void> {
    inFlight ??= refresh().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }
}
