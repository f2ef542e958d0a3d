import { Prisma, type Db } from "@zigznote/database";

/**
 * The overview's figures (each one statement over an index, whatever the number of
 * organizations) and the job runs, for the console.
 */

// ---- overview ----

export function countOrganizations(
  db: Db,
): Promise<{ plan_slug: string; status: "active" | "deleted"; count: bigint }[]> {
  // An index-only scan of (plan_slug, status): the one figure that reads every organization.
  return db.$queryRaw`
    SELECT plan_slug, status::text AS status, count(*) AS count
      FROM organizations GROUP BY plan_slug, status ORDER BY plan_slug, status`;
}

export function countUnresolvedViolations(
  db: Db,
  input: { now: Date },
): Promise<{ type: string; action: string; is_waived: boolean; count: bigint }[]> {
  return db.$queryRaw`
    SELECT type, action, COALESCE(waived_until > ${input.now}, false) AS is_waived,
           count(*) AS count
      FROM plan_violations WHERE resolved_at IS NULL
     GROUP BY 1, 2, 3 ORDER BY 1, 2`;
}

/** Violations detected and resolved per UTC day from `since` (a UTC midnight) on. */
export function countViolationsPerDay(
  db: Db,
  input: { since: Date },
): Promise<{ day: Date; detected: bigint; resolved: bigint }[]> {
  return db.$queryRaw`
    WITH detected AS (
      SELECT date_trunc('day', detected_at, 'UTC') AS day, count(*) AS n
        FROM plan_violations WHERE detected_at >= ${input.since} GROUP BY 1),
    resolved AS (
      SELECT date_trunc('day', resolved_at, 'UTC') AS day, count(*) AS n
        FROM plan_violations WHERE resolved_at >= ${input.since} GROUP BY 1)
    SELECT COALESCE(d.day, r.day) AS day, COALESCE(d.n, 0) AS detected, COALESCE(r.n, 0) AS resolved
      FROM detected d FULL JOIN resolved r ON r.day = d.day`;
}

export async function countDunning(
  db: Db,
  input: { now: Date; in24h: Date; in7d: Date },
): Promise<{
  past_due: bigint;
  suspended: bigint;
  comped: bigint;
  grace_24h: bigint;
  grace_7d: bigint;
}> {
  const rows = await db.$queryRaw<
    { past_due: bigint; suspended: bigint; comped: bigint; grace_24h: bigint; grace_7d: bigint }[]
  >`
    SELECT count(*) FILTER (WHERE status = 'past_due') AS past_due,
           count(*) FILTER (WHERE status = 'suspended') AS suspended,
           count(*) FILTER (WHERE status = 'suspended' AND comp_until > ${input.now}) AS comped,
           count(*) FILTER (WHERE status = 'past_due' AND grace_ends_at > ${input.now}
                              AND grace_ends_at <= ${input.in24h}) AS grace_24h,
           count(*) FILTER (WHERE status = 'past_due' AND grace_ends_at > ${input.now}
                              AND grace_ends_at <= ${input.in7d}) AS grace_7d
      FROM subscriptions WHERE status IN ('past_due', 'suspended')`;
  return rows[0]!;
}

/** Pending and failed notices (all), and those sent since `sentSince` (the outbox keeps them). */
export function countNotices(
  db: Db,
  input: { sentSince: Date },
): Promise<{ status: string; count: bigint }[]> {
  // Each count is a range of the (status, created_at) index.
  return db.$queryRaw`
    SELECT 'pending' AS status, count(*) AS count FROM notification_outbox WHERE status = 'pending'
    UNION ALL
    SELECT 'failed', count(*) FROM notification_outbox WHERE status = 'failed'
    UNION ALL
    SELECT 'sent', count(*) FROM notification_outbox
     WHERE status = 'sent' AND created_at >= ${input.sentSince}`;
}

export function summarizeJobRuns(
  db: Db,
  input: { since24h: Date; since7d: Date },
): Promise<
  {
    job_name: string;
    runs_24h: bigint;
    succeeded_24h: bigint;
    finished_24h: bigint;
    runs_7d: bigint;
    succeeded_7d: bigint;
    finished_7d: bigint;
  }[]
> {
  return db.$queryRaw`
    SELECT job_name,
           count(*) FILTER (WHERE started_at >= ${input.since24h}) AS runs_24h,
           count(*) FILTER (WHERE started_at >= ${input.since24h} AND outcome = 'succeeded') AS succeeded_24h,
           count(*) FILTER (WHERE started_at >= ${input.since24h}
                              AND outcome IN ('succeeded', 'failed')) AS finished_24h,
           count(*) AS runs_7d,
           count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded_7d,
           count(*) FILTER (WHERE outcome IN ('succeeded', 'failed')) AS finished_7d
      FROM job_runs WHERE started_at >= ${input.since7d}
     GROUP BY job_name`;
}

export function findLastFailures(
  db: Db,
  input: { jobNames: readonly string[] },
): Promise<{ job_name: string; at: Date; error: string | null }[]> {
  // One index probe per job (the partial index of failed runs).
  return db.$queryRaw`
    SELECT n.job_name, f.at, f.error
      FROM unnest(${[...input.jobNames]}::text[]) AS n(job_name)
      CROSS JOIN LATERAL (
        SELECT COALESCE(r.finished_at, r.started_at) AS at, r.error
          FROM job_runs r
         WHERE r.job_name = n.job_name AND r.outcome = 'failed'
         ORDER BY r.started_at DESC LIMIT 1) f`;
}

// ---- job runs ----

export interface JobRunRow {
  id: string;
  job_name: string;
  scheduled_for: Date;
  started_at: Date;
  finished_at: Date | null;
  outcome: "running" | "succeeded" | "failed" | "skipped";
  rows_affected: number;
  error: string | null;
  instance_id: string | null;
}

export function listJobRuns(
  db: Db,
  input: {
    jobName?: string;
    outcome?: string;
    cursor: { startedAt: Date; id: string } | null;
    limit: number;
  },
): Promise<JobRunRow[]> {
  const conditions: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (input.jobName) conditions.push(Prisma.sql`job_name = ${input.jobName}`);
  if (input.outcome) conditions.push(Prisma.sql`outcome = ${input.outcome}::"JobOutcome"`);
  if (input.cursor) {
    conditions.push(
      Prisma.sql`(started_at, id) < (${input.cursor.startedAt}, ${input.cursor.id}::uuid)`,
    );
  }
  return db.$queryRaw<JobRunRow[]>`
    SELECT id, job_name, scheduled_for, started_at, finished_at, outcome::text AS outcome,
           rows_affected, error, instance_id
      FROM job_runs WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY started_at DESC, id DESC LIMIT ${input.limit + 1}`;
}
