import { Prisma, queryRows, type Db, type SqlDb } from "@zigznote/database";

/**
 * Plan limits on the organization: its recorded violations (the organization's copy the write
 * guard reads, and the `plan_violations` rows with their events), the limits of its plan, and
 * what the write guard reads. Every query and conditional update of those, nothing else: the
 * rules live in `violations.ts`, `overrides.ts` and `access.ts`. Each race-safe step is one
 * statement (row locks, conditional updates).
 */

interface OrganizationKey {
  organizationId: string;
}

// ---- the organization's limits and recorded violations ----

export interface OrganizationLimitsRow {
  plan_slug: string;
  plan_violations: unknown;
  max_team_members: number | null;
  max_storage_bytes: bigint | null;
  max_meetings_per_month: number | null;
}

/** The organization's plan limits and recorded violations, under its row lock; or null. */
export async function lockOrganizationLimits(
  db: Db,
  input: OrganizationKey,
): Promise<OrganizationLimitsRow | null> {
  // The row lock serializes concurrent checks of one organization (plan change vs. job) and
  // the creates the write guard admits. The plan is read per locked row (not joined): after
  // waiting for a plan change, PostgreSQL rechecks a join against the plan row it read before
  // the wait, finds the slugs differ and returns no row at all. A deleted organization has no
  // limits left to enforce and nobody to tell: no row (the check does nothing).
  const rows = await db.$queryRaw<OrganizationLimitsRow[]>`
    SELECT o.plan_slug, o.plan_violations,
           (SELECT max_team_members FROM plans WHERE slug = o.plan_slug) AS max_team_members,
           (SELECT max_storage_bytes FROM plans WHERE slug = o.plan_slug) AS max_storage_bytes,
           (SELECT max_meetings_per_month FROM plans WHERE slug = o.plan_slug)
             AS max_meetings_per_month
      FROM organizations o
     WHERE o.id = ${input.organizationId}::uuid AND o.deleted_at IS NULL
       FOR UPDATE`;
  return rows[0] ?? null;
}

export async function updateViolations(
  db: Db,
  input: OrganizationKey & { violations: unknown[]; checkedAt: Date | null },
): Promise<void> {
  await db.$executeRaw`
    UPDATE organizations
       SET plan_violations = ${JSON.stringify(input.violations)}::jsonb,
           plan_violations_at = ${input.checkedAt},
           updated_at = now()
     WHERE id = ${input.organizationId}::uuid`;
}

/** Live organizations with any recorded (unresolved) violation. */
export async function findOrganizationIdsWithViolations(db: Db): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT DISTINCT v.organization_id AS id
      FROM plan_violations v JOIN organizations o ON o.id = v.organization_id
     WHERE v.resolved_at IS NULL AND o.deleted_at IS NULL`;
  return rows.map((row) => row.id);
}

/**
 * Live organizations with a violation still in grace whose grace ended by `now` (storage's own
 * grace, or one a platform admin extended).
 */
export async function findOrganizationIdsWithExpiredStorageGrace(
  db: Db,
  input: { now: Date },
): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT DISTINCT v.organization_id AS id
      FROM plan_violations v JOIN organizations o ON o.id = v.organization_id
     WHERE v.resolved_at IS NULL AND v.action = 'grace_period'
       AND v.grace_ends_at <= ${input.now} AND o.deleted_at IS NULL`;
  return rows.map((row) => row.id);
}

/** The organization's recorded violations (raw JSON; parse with `parseViolations`). */
export async function findRecordedViolations(db: Db, input: OrganizationKey): Promise<unknown> {
  const row = await db.organization.findUnique({
    where: { id: input.organizationId },
    select: { planViolations: true },
  });
  return row?.planViolations ?? [];
}

/** Another plan's limits with the organization's recorded violations (no lock: a preview). */
export async function findLimitsUnderPlan(
  db: Db,
  input: OrganizationKey & { planSlug: string },
): Promise<OrganizationLimitsRow | null> {
  const rows = await db.$queryRaw<OrganizationLimitsRow[]>`
    SELECT p.slug AS plan_slug, o.plan_violations, p.max_team_members, p.max_storage_bytes,
           p.max_meetings_per_month
      FROM organizations o, plans p
     WHERE o.id = ${input.organizationId}::uuid AND p.slug = ${input.planSlug}`;
  return rows[0] ?? null;
}

/**
 * Live organizations whose storage grace period ends in (now, until]: still in grace, about to
 * turn read-only. With the violation as recorded.
 */
export function findStorageGraceEnding(
  db: Db,
  input: { now: Date; until: Date },
): Promise<{ id: string; plan_slug: string; violation: Record<string, unknown> }[]> {
  return db.$queryRaw`
    SELECT o.id, o.plan_slug, v AS violation FROM organizations o,
           jsonb_array_elements(o.plan_violations) v
     WHERE o.deleted_at IS NULL
       AND v->>'type' = 'storage' AND v->>'action' = 'grace_period'
       AND (v->>'graceEndsAt')::timestamptz > ${input.now}
       AND (v->>'graceEndsAt')::timestamptz <= ${input.until}`;
}

// ---- the write guard's row ----

/**
 * The access row's `is_suspended` (`$2` is now): a suspended subscription a platform admin
 * comped (comp_until after now) does not count.
 */
const IS_SUSPENDED = `EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.organization_id = o.id AND s.status = 'suspended'
                       AND (s.comp_until IS NULL OR s.comp_until <= $2)) AS is_suspended`;

export interface AccessRow {
  plan_slug: string;
  plan_violations: unknown;
  max_team_members: number | null;
  max_meetings_per_month: number | null;
  is_suspended: boolean;
}

/**
 * What the write guard reads of a live organization, in one query; or null. Plain SQL: it runs
 * before every write. A suspended subscription a platform admin comped (comp_until after `now`)
 * does not count as suspended.
 */
export async function findAccessRow(
  db: SqlDb,
  input: OrganizationKey & { now: Date },
): Promise<AccessRow | null> {
  const rows = await queryRows<AccessRow>(
    db,
    `SELECT o.plan_slug, o.plan_violations, p.max_team_members, p.max_meetings_per_month,
            ${IS_SUSPENDED}
       FROM organizations o JOIN plans p ON p.slug = o.plan_slug
      WHERE o.id = $1::uuid AND o.deleted_at IS NULL`,
    [input.organizationId, input.now],
  );
  return rows[0] ?? null;
}

/**
 * `findAccessRow` under the organization's row lock (FOR NO KEY UPDATE), held until the
 * transaction ends; null for an unknown or deleted organization. It makes the guarded creates
 * of one organization take turns, so that each counts the ones before it, and orders them
 * against plan changes and violation checks (which update the row or lock it FOR UPDATE). It
 * does not conflict with the FOR KEY SHARE that inserting a row referencing the organization
 * takes. After a wait the row is the one the previous holder left (a plan changed meanwhile is
 * seen), and the caller's next statement sees every write the previous holder committed.
 *
 * One mode for every guarded write, though an unlimited plan or a recording counts nothing:
 * - a shared mode would let a steady stream of such writes hold the row without a gap, and a
 *   plan change waiting for it would wait as long as they keep coming (shared lockers join a
 *   shared lock without queueing behind a waiter); exclusive lockers queue in order;
 * - taking a shared lock first and the exclusive one once the plan shows a limit is an upgrade,
 *   and an upgrade deadlocks against a transaction that updated the row and then locks it FOR
 *   UPDATE (Clerk's membership events, a plan change), which waits for the shared lock while
 *   the upgrade waits for its update.
 */
export async function lockAccessRow(
  db: SqlDb,
  input: OrganizationKey & { now: Date },
): Promise<AccessRow | null> {
  // The plan's limits are read per locked row, not joined (see lockOrganizationLimits).
  const rows = await queryRows<AccessRow>(
    db,
    `SELECT o.plan_slug, o.plan_violations,
            (SELECT max_team_members FROM plans WHERE slug = o.plan_slug) AS max_team_members,
            (SELECT max_meetings_per_month FROM plans WHERE slug = o.plan_slug)
              AS max_meetings_per_month,
            ${IS_SUSPENDED}
       FROM organizations o
      WHERE o.id = $1::uuid AND o.deleted_at IS NULL
        FOR NO KEY UPDATE`,
    [input.organizationId, input.now],
  );
  return rows[0] ?? null;
}

// ---- plan_violations: one row per violation, kept in step by checkPlanViolations ----

export interface ViolationRow {
  id: string;
  type: string;
  action: string;
  limit_value: bigint;
  current_usage: bigint;
  detected_at: Date;
  grace_ends_at: Date | null;
  waived_until: Date | null;
  version: number;
}

/** The organization's unresolved violation rows (the caller holds the organization's lock). */
export function findUnresolvedViolationRows(
  db: Db,
  input: OrganizationKey,
): Promise<ViolationRow[]> {
  return db.$queryRaw<ViolationRow[]>`
    SELECT id, type, action, limit_value, current_usage, detected_at, grace_ends_at,
           waived_until, version
      FROM plan_violations
     WHERE organization_id = ${input.organizationId}::uuid AND resolved_at IS NULL`;
}

export interface ViolationRowWrite {
  type: string;
  action: string;
  limit: number;
  current: number;
  detectedAt: Date;
  graceEndsAt: Date | null;
}

/** Records a newly detected violation and its `detected` event; returns its id. */
export async function insertViolationRow(
  db: Db,
  input: OrganizationKey & ViolationRowWrite & { now: Date },
): Promise<void> {
  await db.$executeRaw`
    WITH inserted AS (
      INSERT INTO plan_violations
        (organization_id, type, action, limit_value, current_usage, detected_at, grace_ends_at,
         updated_at)
      VALUES (${input.organizationId}::uuid, ${input.type}, ${input.action}, ${input.limit},
              ${input.current}, ${input.detectedAt}, ${input.graceEndsAt}, ${input.now})
      RETURNING id)
    INSERT INTO plan_violation_events (violation_id, at, event, detail)
    SELECT id, ${input.now}, 'detected',
           ${JSON.stringify({ action: input.action, limit: input.limit, current: input.current })}::jsonb
      FROM inserted`;
}

/** Updates a violation row that changed (action or usage), bumping its version, with its event. */
export async function updateViolationRow(
  db: Db,
  input: { id: string; now: Date; event: "action_changed" | "usage_changed" } & ViolationRowWrite,
): Promise<void> {
  await db.$executeRaw`
    WITH updated AS (
      UPDATE plan_violations
         SET action = ${input.action}, limit_value = ${input.limit},
             current_usage = ${input.current}, grace_ends_at = ${input.graceEndsAt},
             version = version + 1, updated_at = ${input.now}
       WHERE id = ${input.id}::uuid
      RETURNING id)
    INSERT INTO plan_violation_events (violation_id, at, event, detail)
    SELECT id, ${input.now}, ${input.event},
           ${JSON.stringify({ action: input.action, limit: input.limit, current: input.current })}::jsonb
      FROM updated`;
}

/** Marks violation rows resolved (usage back within the plan), each with its `resolved` event. */
export async function resolveViolationRows(
  db: Db,
  input: { ids: string[]; now: Date },
): Promise<void> {
  if (input.ids.length === 0) return;
  await db.$executeRaw`
    WITH resolved AS (
      UPDATE plan_violations
         SET resolved_at = ${input.now}, version = version + 1, updated_at = ${input.now}
       WHERE id = ANY(${input.ids}::uuid[]) AND resolved_at IS NULL
      RETURNING id)
    INSERT INTO plan_violation_events (violation_id, at, event)
    SELECT id, ${input.now}, 'resolved' FROM resolved`;
}

/**
 * A platform admin's override of a violation: its grace end or waiver, if its version is still
 * `expectedVersion` (bumping it), with the admin's event. False when the version moved on (or
 * it was resolved).
 */
export async function overrideViolationRow(
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
