import { Prisma, type Db } from "@zigznote/database";
import type { ViolationRow } from "../billing";

/**
 * The admin feature's reads of one organization and of the violations across organizations, for
 * the console: each page one indexed query (keyset cursors, never OFFSET, never a scan of every
 * organization). Admin reads other features' tables but writes none of them: its actions change
 * billing's and the outbox's rows through those features' functions, in the action's
 * transaction (lint: see eslint.config.mjs). Its own table, the audit log, is in
 * `auditStore.ts`; the overview's figures and job runs in `overviewStore.ts`.
 */

// ---- violations ----

/** A violation row (billing's columns) with its organization's name and resolution. */
export interface ViolationListRow extends ViolationRow {
  organization_id: string;
  organization_name: string;
  resolved_at: Date | null;
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

/** One subscription as the console shows it (after an action changed it), or null. */
export async function findSubscription(
  db: Db,
  input: { id: string },
): Promise<SubscriptionRow | null> {
  const rows = await db.$queryRaw<SubscriptionRow[]>`
    SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = ${input.id}::uuid`;
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

// ---- members, bots ----

/** What the console shows of a user (alias `u`), as Clerk described them. */
export interface UserColumns {
  user_clerk_id: string | null;
  user_email: string | null;
  /** First and last name joined; null when Clerk gave neither. */
  user_name: string | null;
  user_username: string | null;
}

export const USER_COLUMNS = Prisma.sql`
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
