import { Prisma, type Db } from "@zigznote/database";

/**
 * The admin feature's SQL: reads across organizations for the console (each page one indexed
 * query: keyset cursors, never OFFSET, never a scan of every organization) and the conditional
 * writes of its actions, plus the append-only audit log. The rules live in `reads.ts` and
 * `actions.ts`.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// ---- violations ----

export interface ViolationListRow {
  id: string;
  organization_id: string;
  organization_name: string;
  type: string;
  action: string;
  limit_value: bigint;
  current_usage: bigint;
  detected_at: Date;
  grace_ends_at: Date | null;
  waived_until: Date | null;
  resolved_at: Date | null;
  version: number;
}

const VIOLATION_COLUMNS = Prisma.sql`
  v.id, v.organization_id, o.name AS organization_name, v.type, v.action, v.limit_value,
  v.current_usage, v.detected_at, v.grace_ends_at, v.waived_until, v.resolved_at, v.version`;

export type ViolationStatusFilter = "open" | "waived" | "resolved" | "unresolved";

function statusCondition(status: ViolationStatusFilter, now: Date): Prisma.Sql {
  switch (status) {
    case "open":
      return Prisma.sql`v.resolved_at IS NULL AND (v.waived_until IS NULL OR v.waived_until <= ${now})`;
    case "waived":
      return Prisma.sql`v.resolved_at IS NULL AND v.waived_until > ${now}`;
    case "resolved":
      return Prisma.sql`v.resolved_at IS NOT NULL`;
    case "unresolved":
      return Prisma.sql`v.resolved_at IS NULL`;
  }
}

/** `LIKE` pattern matching values that start with `prefix` (its wildcards taken literally). */
export function prefixPattern(prefix: string): string {
  return `${prefix.toLowerCase().replace(/[\\%_]/g, (char) => `\\${char}`)}%`;
}

/** The organization condition of a search: its id when `q` is one, else its name's start. */
function organizationMatch(alias: string, q: { id: string } | { prefix: string }): Prisma.Sql {
  const table = Prisma.raw(alias);
  return "id" in q
    ? Prisma.sql`${table}.id = ${q.id}::uuid`
    : Prisma.sql`lower(${table}.name) COLLATE "C" LIKE ${prefixPattern(q.prefix)}`;
}

export type ViolationCursor =
  | { sort: "detectedAt"; detectedAt: Date; id: string }
  | { sort: "graceEndsAt"; graceEndsAt: Date | null; id: string };

/** One page (plus one row, to know whether there is a next) of violations. */
export function listViolations(
  db: Db,
  input: {
    now: Date;
    status: ViolationStatusFilter;
    type?: string;
    action?: string;
    organization?: { id: string } | { prefix: string };
    sort: "detectedAt" | "graceEndsAt";
    cursor: ViolationCursor | null;
    limit: number;
  },
): Promise<ViolationListRow[]> {
  const conditions: Prisma.Sql[] = [statusCondition(input.status, input.now)];
  if (input.type) conditions.push(Prisma.sql`v.type = ${input.type}`);
  if (input.action) conditions.push(Prisma.sql`v.action = ${input.action}`);
  if (input.organization) conditions.push(organizationMatch("o", input.organization));
  const cursor = input.cursor;
  let order: Prisma.Sql;
  if (input.sort === "detectedAt") {
    order = Prisma.sql`v.detected_at DESC, v.id DESC`;
    if (cursor?.sort === "detectedAt") {
      conditions.push(
        Prisma.sql`(v.detected_at, v.id) < (${cursor.detectedAt}, ${cursor.id}::uuid)`,
      );
    }
  } else {
    // Soonest grace end first; violations without one (enforced already) after them.
    order = Prisma.sql`v.grace_ends_at ASC NULLS LAST, v.id ASC`;
    if (cursor?.sort === "graceEndsAt") {
      conditions.push(
        cursor.graceEndsAt === null
          ? Prisma.sql`(v.grace_ends_at IS NULL AND v.id > ${cursor.id}::uuid)`
          : Prisma.sql`((v.grace_ends_at, v.id) > (${cursor.graceEndsAt}, ${cursor.id}::uuid)
                        OR v.grace_ends_at IS NULL)`,
      );
    }
  }
  return db.$queryRaw<ViolationListRow[]>`
    SELECT ${VIOLATION_COLUMNS}
      FROM plan_violations v JOIN organizations o ON o.id = v.organization_id
     WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY ${order}
     LIMIT ${input.limit + 1}`;
}

/** One violation with its organization's name; `lock` takes its row lock. */
export async function findViolation(
  db: Db,
  input: { id: string; lock?: boolean },
): Promise<ViolationListRow | null> {
  const rows = await db.$queryRaw<ViolationListRow[]>`
    SELECT ${VIOLATION_COLUMNS}
      FROM plan_violations v JOIN organizations o ON o.id = v.organization_id
     WHERE v.id = ${input.id}::uuid
     ${input.lock ? Prisma.sql`FOR UPDATE OF v` : Prisma.empty}`;
  return rows[0] ?? null;
}

/** The organization's violations, unresolved first then newest, at most `limit`. */
export function findOrganizationViolations(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<ViolationListRow[]> {
  return db.$queryRaw<ViolationListRow[]>`
    SELECT ${VIOLATION_COLUMNS}
      FROM plan_violations v JOIN organizations o ON o.id = v.organization_id
     WHERE v.organization_id = ${input.organizationId}::uuid
     ORDER BY (v.resolved_at IS NULL) DESC, v.detected_at DESC, v.id DESC
     LIMIT ${input.limit}`;
}

export interface ViolationEventRow {
  violation_id: string;
  at: Date;
  event: string;
  actor_user_id: string | null;
  reason: string | null;
}

/** The events of these violations, oldest first. */
export function findViolationEvents(
  db: Db,
  input: { violationIds: string[] },
): Promise<ViolationEventRow[]> {
  // Sent even for no ids: a fixed number of statements per request.
  return db.$queryRaw<ViolationEventRow[]>`
    SELECT violation_id, at, event, actor_user_id, reason
      FROM plan_violation_events
     WHERE violation_id = ANY(${input.violationIds}::uuid[])
     ORDER BY id`;
}

/**
 * Sets a violation's grace end or waiver if its version is still `expectedVersion` (bumping
 * it), with the admin's event. False when the version moved on (or it was resolved).
 */
export async function updateViolationByAdmin(
  db: Db,
  input: {
    id: string;
    expectedVersion: number;
    now: Date;
    actorUserId: string;
    reason: string;
  } & ({ graceEndsAt: Date } | { waivedUntil: Date }),
): Promise<boolean> {
  const isGrace = "graceEndsAt" in input;
  const set = isGrace
    ? Prisma.sql`grace_ends_at = ${input.graceEndsAt}`
    : Prisma.sql`waived_until = ${input.waivedUntil}`;
  const event = isGrace ? "grace_extended" : "waived";
  const detail = isGrace
    ? { graceEndsAt: input.graceEndsAt.toISOString() }
    : { waivedUntil: input.waivedUntil.toISOString() };
  const rows = await db.$queryRaw<{ id: string }[]>`
    WITH updated AS (
      UPDATE plan_violations
         SET ${set}, version = version + 1, updated_at = ${input.now}
       WHERE id = ${input.id}::uuid AND version = ${input.expectedVersion}
         AND resolved_at IS NULL
      RETURNING id),
    event AS (
      INSERT INTO plan_violation_events (violation_id, at, event, actor_user_id, reason, detail)
      SELECT id, ${input.now}, ${event}, ${input.actorUserId}::uuid, ${input.reason},
             ${JSON.stringify(detail)}::jsonb
        FROM updated)
    SELECT id FROM updated`;
  return rows.length > 0;
}

// ---- organizations ----

export interface OrganizationRow {
  id: string;
  name: string;
  /** `lower(name)` as PostgreSQL computes it: the name-order cursor's key. */
  sort_name: string;
  plan_slug: string;
  status: "active" | "deleted";
  created_at: Date;
}

/** Locks the organization row (serializes admin actions with billing's checks); false if none. */
export async function lockOrganization(
  db: Db,
  input: { organizationId: string },
): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations WHERE id = ${input.organizationId}::uuid FOR UPDATE`;
  return rows.length > 0;
}

export type OrganizationCursor = { createdAt: Date; id: string } | { name: string; id: string };

/**
 * A page (plus one) of organizations: by id, by name prefix (name order, the
 * `lower(name) COLLATE "C"` index), or newest first.
 */
export function searchOrganizations(
  db: Db,
  input: {
    organization?: { id: string } | { prefix: string };
    cursor: OrganizationCursor | null;
    limit: number;
  },
): Promise<OrganizationRow[]> {
  const columns = Prisma.sql`o.id, o.name, lower(o.name) AS sort_name, o.plan_slug,
                             o.status::text AS status, o.created_at`;
  const match = input.organization;
  const cursor = input.cursor;
  if (match && "prefix" in match) {
    const after =
      cursor && "name" in cursor
        ? Prisma.sql`AND (lower(o.name) COLLATE "C", o.id) > (${cursor.name} COLLATE "C", ${cursor.id}::uuid)`
        : Prisma.empty;
    return db.$queryRaw<OrganizationRow[]>`
      SELECT ${columns} FROM organizations o
       WHERE ${organizationMatch("o", match)} ${after}
       ORDER BY lower(o.name) COLLATE "C", o.id
       LIMIT ${input.limit + 1}`;
  }
  const conditions: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (match) conditions.push(organizationMatch("o", match));
  if (cursor && "createdAt" in cursor) {
    conditions.push(Prisma.sql`(o.created_at, o.id) < (${cursor.createdAt}, ${cursor.id}::uuid)`);
  }
  return db.$queryRaw<OrganizationRow[]>`
    SELECT ${columns} FROM organizations o
     WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY o.created_at DESC, o.id DESC
     LIMIT ${input.limit + 1}`;
}

export interface OrganizationDetailRow extends OrganizationRow {
  max_team_members: number | null;
  max_storage_bytes: bigint | null;
  max_meetings_per_month: number | null;
}

export async function findOrganization(
  db: Db,
  input: { organizationId: string },
): Promise<OrganizationDetailRow | null> {
  const rows = await db.$queryRaw<OrganizationDetailRow[]>`
    SELECT o.id, o.name, lower(o.name) AS sort_name, o.plan_slug, o.status::text AS status,
           o.created_at, p.max_team_members, p.max_storage_bytes, p.max_meetings_per_month
      FROM organizations o JOIN plans p ON p.slug = o.plan_slug
     WHERE o.id = ${input.organizationId}::uuid`;
  return rows[0] ?? null;
}

// ---- subscriptions ----

export interface SubscriptionRow {
  id: string;
  organization_id: string;
  plan_slug: string;
  status: string;
  stripe_subscription_id: string;
  current_period_end: Date | null;
  grace_ends_at: Date | null;
  payment_failed_at: Date | null;
  payment_retry_count: number;
  comp_until: Date | null;
  version: number;
  created_at: Date;
  canceled_at: Date | null;
  last_payment_succeeded_event_at: Date | null;
  outstanding_failures_at: Date[];
}

const SUBSCRIPTION_COLUMNS = Prisma.sql`
  id, organization_id, plan_slug, status::text AS status, stripe_subscription_id,
  current_period_end, grace_ends_at, payment_failed_at, payment_retry_count, comp_until, version,
  created_at, canceled_at, last_payment_succeeded_event_at, outstanding_failures_at`;

/** The organization's newest subscription (what the console shows), or null. */
export async function findNewestSubscription(
  db: Db,
  input: { organizationId: string },
): Promise<SubscriptionRow | null> {
  const rows = await db.$queryRaw<SubscriptionRow[]>`
    SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions
     WHERE organization_id = ${input.organizationId}::uuid
     ORDER BY created_at DESC, id DESC LIMIT 1`;
  return rows[0] ?? null;
}

/** The organization's newest suspended subscription, row-locked; or null. */
export async function lockSuspendedSubscription(
  db: Db,
  input: { organizationId: string },
): Promise<SubscriptionRow | null> {
  const rows = await db.$queryRaw<SubscriptionRow[]>`
    SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions
     WHERE organization_id = ${input.organizationId}::uuid AND status = 'suspended'
     ORDER BY created_at DESC, id DESC LIMIT 1
       FOR UPDATE`;
  return rows[0] ?? null;
}

/** Sets comp_until if the version is still `expectedVersion`; the row after, or null. */
export async function compSubscription(
  db: Db,
  input: { id: string; expectedVersion: number; compUntil: Date; now: Date },
): Promise<SubscriptionRow | null> {
  const rows = await db.$queryRaw<SubscriptionRow[]>`
    UPDATE subscriptions
       SET comp_until = ${input.compUntil}, version = version + 1, updated_at = ${input.now}
     WHERE id = ${input.id}::uuid AND version = ${input.expectedVersion}
    RETURNING ${SUBSCRIPTION_COLUMNS}`;
  return rows[0] ?? null;
}

// ---- notices ----

export interface NoticeRow {
  id: string;
  organization_id: string;
  type: string;
  status: "pending" | "sent" | "failed";
  attempts: number;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
  recipient_email: string | null;
}

const NOTICE_COLUMNS = Prisma.sql`
  id, organization_id, type, status::text AS status, attempts, last_error, created_at, sent_at,
  recipient_email`;

export function findOrganizationNotices(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<NoticeRow[]> {
  return db.$queryRaw<NoticeRow[]>`
    SELECT ${NOTICE_COLUMNS} FROM notification_outbox
     WHERE organization_id = ${input.organizationId}::uuid
     ORDER BY created_at DESC, id DESC LIMIT ${input.limit}`;
}

export async function lockNotice(db: Db, input: { id: string }): Promise<NoticeRow | null> {
  const rows = await db.$queryRaw<NoticeRow[]>`
    SELECT ${NOTICE_COLUMNS} FROM notification_outbox WHERE id = ${input.id}::uuid FOR UPDATE`;
  return rows[0] ?? null;
}

/** Puts a sent or failed notice back in the queue (the deliverers pick it up); the row after. */
export async function requeueNotice(db: Db, input: { id: string }): Promise<NoticeRow | null> {
  const rows = await db.$queryRaw<NoticeRow[]>`
    UPDATE notification_outbox
       SET status = 'pending', attempts = 0, last_error = NULL, claimed_until = NULL,
           sent_at = NULL
     WHERE id = ${input.id}::uuid AND status <> 'pending'
    RETURNING ${NOTICE_COLUMNS}`;
  return rows[0] ?? null;
}

// ---- members, bots ----

/** What the console shows of a user (alias `u`), as Clerk described them. */
export interface UserColumns {
  user_clerk_id: string | null;
  user_email: string | null;
  /** First and last name joined; null when Clerk gave neither. */
  user_name: string | null;
  user_username: string | null;
}

const USER_COLUMNS = Prisma.sql`
  u.clerk_id AS user_clerk_id, u.email AS user_email,
  NULLIF(concat_ws(' ', NULLIF(trim(u.first_name), ''), NULLIF(trim(u.last_name), '')), '')
    AS user_name,
  u.username AS user_username`;

export function findMembers(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<(UserColumns & { user_id: string; role: "admin" | "member" })[]> {
  return db.$queryRaw`
    SELECT m.user_id, ${USER_COLUMNS}, m.role::text AS role
      FROM memberships m JOIN users u ON u.id = m.user_id
     WHERE m.organization_id = ${input.organizationId}::uuid AND u.deleted_at IS NULL
     ORDER BY m.created_at, m.id LIMIT ${input.limit}`;
}

export function findRecentBots(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<{ id: string; meeting_id: string; status: string; created_at: Date }[]> {
  return db.$queryRaw`
    SELECT b.id, b.meeting_id, b.status::text AS status, b.created_at
      FROM bots b
     WHERE b.organization_id = ${input.organizationId}::uuid
     ORDER BY b.created_at DESC, b.id DESC LIMIT ${input.limit}`;
}

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
           rows_affected, error
      FROM job_runs WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY started_at DESC, id DESC LIMIT ${input.limit + 1}`;
}

// ---- audit log ----

export interface AuditInsert {
  actorUserId: string;
  action: string;
  targetType: string;
  targetId: string;
  organizationId: string | null;
  reason: string;
  before: unknown;
  after: unknown;
  createdAt: Date;
}

/** Appends one entry (in the caller's transaction); returns its id. */
export async function insertAuditEntry(db: Db, input: AuditInsert): Promise<string> {
  const json = (value: unknown) => (value === null ? null : JSON.stringify(value));
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO admin_audit_log
      (actor_user_id, action, target_type, target_id, organization_id, reason, before, after,
       created_at)
    VALUES (${input.actorUserId}::uuid, ${input.action}, ${input.targetType}, ${input.targetId},
            ${input.organizationId}::uuid, ${input.reason}, ${json(input.before)}::jsonb,
            ${json(input.after)}::jsonb, ${input.createdAt})
    RETURNING id`;
  return rows[0]!.id;
}

export interface AuditRow extends UserColumns {
  id: string;
  actor_user_id: string;
  organization_name: string | null;
  action: string;
  target_type: string;
  target_id: string;
  organization_id: string | null;
  reason: string;
  before: unknown;
  after: unknown;
  created_at: Date;
}

export function listAuditEntries(
  db: Db,
  input: {
    targetType?: string;
    targetId?: string;
    actorUserId?: string;
    cursor: { createdAt: Date; id: string } | null;
    limit: number;
  },
): Promise<AuditRow[]> {
  const conditions: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (input.targetType) conditions.push(Prisma.sql`a.target_type = ${input.targetType}`);
  if (input.targetId) {
    // An organization's id also finds the entries about its violations, notices, subscription.
    conditions.push(
      UUID.test(input.targetId)
        ? Prisma.sql`(a.target_id = ${input.targetId}
                      OR a.organization_id = ${input.targetId}::uuid)`
        : Prisma.sql`a.target_id = ${input.targetId}`,
    );
  }
  if (input.actorUserId) conditions.push(Prisma.sql`a.actor_user_id = ${input.actorUserId}::uuid`);
  if (input.cursor) {
    conditions.push(
      Prisma.sql`(a.created_at, a.id) < (${input.cursor.createdAt}, ${input.cursor.id}::uuid)`,
    );
  }
  return db.$queryRaw<AuditRow[]>`
    SELECT a.id, a.actor_user_id, ${USER_COLUMNS}, a.action, a.target_type, a.target_id,
           a.organization_id, o.name AS organization_name, a.reason, a.before, a.after,
           a.created_at
      FROM admin_audit_log a
      LEFT JOIN users u ON u.id = a.actor_user_id
      LEFT JOIN organizations o ON o.id = a.organization_id
     WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY a.created_at DESC, a.id DESC LIMIT ${input.limit + 1}`;
}
