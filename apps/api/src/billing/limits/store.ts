import {
  Prisma,
  queryRows,
  type Db,
  type Organization,
  type Plan,
  type SqlDb,
  type Subscription,
  type SubscriptionStatus,
} from "@zigznote/database";
import { DELINQUENT_STATUSES, PLAN_GRANTING_STATUSES, statusInSql } from "./statuses";

/**
 * Billing's tables (plans, subscriptions, the organization's plan, violations, customer and
 * billing lease): every query and conditional update of the feature, nothing else. The rules
 * (what a change does, the payment standing, what a violation is, what the guard allows) live
 * in `BillingService.ts`, `subscriptionSync.ts`, `paymentStanding.ts`, `stripeEvents.ts`,
 * `violations.ts` and `access.ts`; they hand their parameters to these statements. Each
 * race-safe step is one statement (row locks, conditional updates, ON CONFLICT).
 */

export interface OrganizationKey {
  organizationId: string;
}

// ---- plans ----

/** The plans, cheapest first. */
export function findPlans(db: Db): Promise<Plan[]> {
  return db.plan.findMany({ orderBy: { rank: "asc" } });
}

export function findPlanBySlug(db: Db, input: { slug: string }): Promise<Plan | null> {
  return db.plan.findUnique({ where: { slug: input.slug } });
}

export function findPlanBySlugOrThrow(db: Db, input: { slug: string }): Promise<Plan> {
  return db.plan.findUniqueOrThrow({ where: { slug: input.slug } });
}

/** The slug of the plan sold at this Stripe price, or null. */
export async function findPlanSlugByPrice(
  db: Db,
  input: { stripePriceId: string },
): Promise<string | null> {
  const plan = await db.plan.findUnique({
    where: { stripePriceId: input.stripePriceId },
    select: { slug: true },
  });
  return plan?.slug ?? null;
}

// ---- subscriptions ----

/** The organization's plan-granting subscription, if any (the newest). */
export function findLiveSubscription(db: Db, input: OrganizationKey): Promise<Subscription | null> {
  return db.subscription.findFirst({
    where: { organizationId: input.organizationId, status: { in: [...PLAN_GRANTING_STATUSES] } },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
}

/** The organization's newest subscription, whatever its status. */
export function findLatestSubscription(
  db: Db,
  input: OrganizationKey,
): Promise<Subscription | null> {
  return db.subscription.findFirst({
    where: { organizationId: input.organizationId },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
}

export function findSubscriptionByStripeIdOrThrow(
  db: Db,
  input: { stripeSubscriptionId: string },
): Promise<Subscription> {
  return db.subscription.findUniqueOrThrow({
    where: { stripeSubscriptionId: input.stripeSubscriptionId },
  });
}

/** The subscription recorded for a Stripe id, or null. */
export function findSubscriptionByStripeId(
  db: Db,
  input: { stripeSubscriptionId: string },
): Promise<Subscription | null> {
  return db.subscription.findUnique({
    where: { stripeSubscriptionId: input.stripeSubscriptionId },
  });
}

/**
 * Locks the organization row (FOR UPDATE) for the rest of the transaction: a subscription that
 * would become its live one is decided under it, so two arriving at once are decided in turn.
 */
export async function lockOrganization(db: Db, input: OrganizationKey): Promise<void> {
  await db.$queryRaw`
    SELECT id FROM organizations WHERE id = ${input.organizationId}::uuid FOR UPDATE`;
}

/** A notice queued for this cause (any recipient: the outbox appends the recipient to the key). */
export async function findNoticeOfCause(
  db: Db,
  input: OrganizationKey & { dedupeKey: string },
): Promise<{ id: string } | null> {
  return db.notification.findFirst({
    where: {
      organizationId: input.organizationId,
      dedupeKey: { startsWith: `${input.dedupeKey}:` },
    },
    select: { id: true },
  });
}

export async function isSubscriptionRecorded(
  db: Db,
  input: { stripeSubscriptionId: string },
): Promise<boolean> {
  const known = await db.subscription.findUnique({
    where: { stripeSubscriptionId: input.stripeSubscriptionId },
    select: { id: true },
  });
  return known !== null;
}

export interface SubscriptionUpsert {
  organizationId: string;
  planSlug: string;
  stripeSubscriptionId: string;
  stripeCustomerId: string;
  status: SubscriptionStatus;
  currentPeriodStart: Date | null;
  currentPeriodEnd: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  /** The payment method the subscription is charged with (Stripe's `default_payment_method`). */
  defaultPaymentMethodId: string | null;
  trialEnd: Date | null;
  /** The ordering stamp: Stripe's event time, or the API path's time floored to the second. */
  observedAt: Date;
}

/**
 * Inserts or updates the local copy of a Stripe subscription in one statement; the update only
 * applies when the row is not canceled and not newer than `observedAt`. The status is only
 * taken when it is `canceled` (the payment standing derives any other). True when it applied.
 */
export async function upsertSubscription(db: Db, row: SubscriptionUpsert): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO subscriptions
      (organization_id, plan_slug, stripe_subscription_id, stripe_customer_id, status,
       current_period_start, current_period_end, cancel_at_period_end, canceled_at,
       default_payment_method_id, trial_end, last_event_created_at)
    VALUES (${row.organizationId}::uuid, ${row.planSlug}, ${row.stripeSubscriptionId},
            ${row.stripeCustomerId}, ${row.status}::"SubscriptionStatus",
            ${row.currentPeriodStart}, ${row.currentPeriodEnd}, ${row.cancelAtPeriodEnd},
            ${row.canceledAt}, ${row.defaultPaymentMethodId}, ${row.trialEnd}, ${row.observedAt})
    ON CONFLICT (stripe_subscription_id) DO UPDATE SET
      plan_slug = EXCLUDED.plan_slug,
      -- Only the end is taken as is; the payment standing derives any other status.
      status = CASE WHEN EXCLUDED.status = 'canceled'
                    THEN EXCLUDED.status ELSE subscriptions.status END,
      current_period_start = COALESCE(EXCLUDED.current_period_start, subscriptions.current_period_start),
      current_period_end = COALESCE(EXCLUDED.current_period_end, subscriptions.current_period_end),
      cancel_at_period_end = EXCLUDED.cancel_at_period_end,
      canceled_at = COALESCE(EXCLUDED.canceled_at, subscriptions.canceled_at),
      default_payment_method_id = EXCLUDED.default_payment_method_id,
      trial_end = EXCLUDED.trial_end,
      last_event_created_at = EXCLUDED.last_event_created_at,
      updated_at = now()
    WHERE subscriptions.status <> 'canceled'
      AND (subscriptions.last_event_created_at IS NULL
           OR subscriptions.last_event_created_at <= EXCLUDED.last_event_created_at)
    RETURNING id`;
  return rows.length > 0;
}

/** A subscription's payment standing columns (see paymentStanding.ts). */
export interface StandingRow {
  id: string;
  organization_id: string;
  status: SubscriptionStatus;
  last_payment_succeeded_event_at: Date | null;
  outstanding_failures_at: Date[] | null;
  outstanding_past_due_at: Date[] | null;
  grace_ends_at: Date | null;
  payment_failed_at: Date | null;
  payment_retry_count: number;
}

/** Reads the subscription's standing under its row lock (FOR UPDATE), or null. */
export async function lockStanding(
  db: Db,
  input: { stripeSubscriptionId: string },
): Promise<StandingRow | null> {
  const rows = await db.$queryRaw<StandingRow[]>`
    SELECT id, organization_id, status::text AS status, last_payment_succeeded_event_at,
           outstanding_failures_at, outstanding_past_due_at, grace_ends_at, payment_failed_at,
           payment_retry_count
      FROM subscriptions WHERE stripe_subscription_id = ${input.stripeSubscriptionId} FOR UPDATE`;
  return rows[0] ?? null;
}

export interface StandingUpdate {
  status: SubscriptionStatus;
  lastPaymentSucceededEventAt: Date | null;
  outstandingFailuresAt: Date[];
  outstandingPastDueAt: Date[];
  graceEndsAt: Date | null;
  paymentFailedAt: Date | null;
  paymentRetryCount: number;
}

/** Stores a standing derived under `lockStanding`'s lock. */
export async function updateStanding(
  db: Db,
  input: { subscriptionId: string; standing: StandingUpdate },
): Promise<void> {
  const { standing } = input;
  await db.subscription.update({
    where: { id: input.subscriptionId },
    data: {
      status: standing.status,
      lastPaymentSucceededEventAt: standing.lastPaymentSucceededEventAt,
      outstandingFailuresAt: standing.outstandingFailuresAt,
      outstandingPastDueAt: standing.outstandingPastDueAt,
      graceEndsAt: standing.graceEndsAt,
      paymentFailedAt: standing.paymentFailedAt,
      paymentRetryCount: standing.paymentRetryCount,
    },
  });
}

export interface SuspendedRow {
  id: string;
  organization_id: string;
  grace_ends_at: Date;
}

/** Suspends, in one statement, every delinquent subscription whose grace ended by `now`. */
export function suspendExpiredGrace(db: Db, input: { now: Date }): Promise<SuspendedRow[]> {
  return db.$queryRaw<SuspendedRow[]>`
    UPDATE subscriptions SET status = 'suspended', updated_at = now()
     WHERE ${statusInSql(Prisma.raw("status"), DELINQUENT_STATUSES)}
       AND grace_ends_at <= ${input.now}
    RETURNING id, organization_id, grace_ends_at`;
}

// ---- organizations: plan, customer, lookup ----

export function findOrganizationWithPlan(
  db: Db,
  input: OrganizationKey,
): Promise<(Organization & { plan: Plan }) | null> {
  return db.organization.findFirst({
    where: { id: input.organizationId, deletedAt: null },
    include: { plan: true },
  });
}

/**
 * Sets the organization's plan to its newest plan-granting subscription's (else `freePlanSlug`)
 * in one statement, under the organization's row lock. Null when there is no such organization.
 */
export async function syncPlanFromSubscriptions(
  db: Db,
  input: OrganizationKey & { freePlanSlug: string },
): Promise<{ previous: string; next: string } | null> {
  const { organizationId } = input;
  const rows = await db.$queryRaw<{ previous: string; next: string }[]>`
    WITH target AS (
      SELECT COALESCE(
        (SELECT plan_slug FROM subscriptions
          WHERE organization_id = ${organizationId}::uuid
            AND ${statusInSql(Prisma.raw("status"), PLAN_GRANTING_STATUSES)}
          ORDER BY created_at DESC, id DESC LIMIT 1),
        ${input.freePlanSlug}) AS slug),
    previous AS (
      SELECT plan_slug FROM organizations WHERE id = ${organizationId}::uuid FOR UPDATE)
    UPDATE organizations o SET plan_slug = target.slug, updated_at = now()
      FROM target, previous
     WHERE o.id = ${organizationId}::uuid
    RETURNING previous.plan_slug AS previous, o.plan_slug AS next`;
  return rows[0] ?? null;
}

/** Our organization for a Stripe customer: by our id (from metadata) first, then by customer. */
export async function findOrganizationIdForCustomer(
  db: Db,
  input: { organizationId: string | null; stripeCustomerId: string | null },
): Promise<string | null> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations
     WHERE (id = ${input.organizationId}::uuid OR stripe_customer_id = ${input.stripeCustomerId})
     ORDER BY (id = ${input.organizationId}::uuid) DESC NULLS LAST
     LIMIT 1`;
  return rows[0]?.id ?? null;
}

export function findOrganizationCustomer(
  db: Db,
  input: OrganizationKey,
): Promise<{ name: string; stripeCustomerId: string | null }> {
  return db.organization.findUniqueOrThrow({
    where: { id: input.organizationId },
    select: { name: true, stripeCustomerId: true },
  });
}

/** The e-mail of the organization's first admin (a live user), or null. */
export async function findFirstAdminEmail(db: Db, input: OrganizationKey): Promise<string | null> {
  const admin = await db.membership.findFirst({
    where: { organizationId: input.organizationId, role: "admin", user: { deletedAt: null } },
    orderBy: { createdAt: "asc" },
    select: { user: { select: { email: true } } },
  });
  return admin?.user.email ?? null;
}

/** Stores the customer id unless one is stored (the first writer wins); returns the stored one. */
export async function setCustomerIdOnce(
  db: Db,
  input: OrganizationKey & { stripeCustomerId: string },
): Promise<string> {
  await db.$executeRaw`
    UPDATE organizations SET stripe_customer_id = ${input.stripeCustomerId}, updated_at = now()
     WHERE id = ${input.organizationId}::uuid AND stripe_customer_id IS NULL`;
  const stored = await db.organization.findUniqueOrThrow({
    where: { id: input.organizationId },
    select: { stripeCustomerId: true },
  });
  return stored.stripeCustomerId!;
}

export async function isLiveOrganization(db: Db, input: OrganizationKey): Promise<boolean> {
  const count = await db.organization.count({
    where: { id: input.organizationId, deletedAt: null },
  });
  return count > 0;
}

// ---- the per-organization billing lease ----

export interface LeaseKey extends OrganizationKey {
  leaseId: string;
}

/**
 * Takes the organization's billing lease in one conditional update: only when it is free or
 * expired at `now`. False when another holds it (or there is no live organization).
 */
export async function takeLease(
  db: Db,
  input: LeaseKey & { now: Date; expiresAt: Date },
): Promise<boolean> {
  const taken = await db.$executeRaw`
    UPDATE organizations
       SET billing_operation_id = ${input.leaseId}::uuid,
           billing_operation_expires_at = ${input.expiresAt}
     WHERE id = ${input.organizationId}::uuid AND deleted_at IS NULL
       AND (billing_operation_id IS NULL OR billing_operation_expires_at <= ${input.now})`;
  return taken > 0;
}

/** Releases the lease if it is still this one. */
export async function releaseLease(db: Db, input: LeaseKey): Promise<void> {
  await db.$executeRaw`
    UPDATE organizations SET billing_operation_id = NULL, billing_operation_expires_at = NULL
     WHERE id = ${input.organizationId}::uuid AND billing_operation_id = ${input.leaseId}::uuid`;
}

/** Locks the organization row (FOR UPDATE) if the lease is still this one; false otherwise. */
export async function lockHeldLease(db: Db, input: LeaseKey): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations
     WHERE id = ${input.organizationId}::uuid AND billing_operation_id = ${input.leaseId}::uuid
       FOR UPDATE`;
  return rows.length > 0;
}

// ---- organizations: violations and the write guard ----

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
  // the wait, finds the slugs differ and returns no row at all.
  const rows = await db.$queryRaw<OrganizationLimitsRow[]>`
    SELECT o.plan_slug, o.plan_violations,
           (SELECT max_team_members FROM plans WHERE slug = o.plan_slug) AS max_team_members,
           (SELECT max_storage_bytes FROM plans WHERE slug = o.plan_slug) AS max_storage_bytes,
           (SELECT max_meetings_per_month FROM plans WHERE slug = o.plan_slug)
             AS max_meetings_per_month
      FROM organizations o
     WHERE o.id = ${input.organizationId}::uuid
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
            EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.organization_id = o.id AND s.status = 'suspended'
                       AND (s.comp_until IS NULL OR s.comp_until <= $2)) AS is_suspended
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
            EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.organization_id = o.id AND s.status = 'suspended'
                       AND (s.comp_until IS NULL OR s.comp_until <= $2)) AS is_suspended
       FROM organizations o
      WHERE o.id = $1::uuid AND o.deleted_at IS NULL
        FOR NO KEY UPDATE`,
    [input.organizationId, input.now],
  );
  return rows[0] ?? null;
}

/** A subscription's standing, by our id (billing notices check it before they are sent). */
export function findStandingById(
  db: Db,
  input: { subscriptionId: string },
): Promise<{ status: SubscriptionStatus; lastPaymentSucceededEventAt: Date | null } | null> {
  return db.subscription.findUnique({
    where: { id: input.subscriptionId },
    select: { status: true, lastPaymentSucceededEventAt: true },
  });
}

/** The organization's recorded violations (raw JSON; parse with `parseViolations`). */
export async function findRecordedViolations(db: Db, input: OrganizationKey): Promise<unknown> {
  const row = await db.organization.findUnique({
    where: { id: input.organizationId },
    select: { planViolations: true },
  });
  return row?.planViolations ?? [];
}

/**
 * Stores the billing e-mail Stripe gave for the organization (by our id, else by its customer
 * id) as of `observedAt` (the event's `created`): an event older than the one that set the
 * stored address changes nothing. A null address writes nothing.
 */
export async function setBillingEmail(
  db: Db,
  input: {
    organizationId?: string | null;
    stripeCustomerId?: string | null;
    email: string | null;
    observedAt: Date;
  },
): Promise<void> {
  if (!input.email) return;
  await db.$executeRaw`
    UPDATE organizations
       SET billing_email = ${input.email}, billing_email_at = ${input.observedAt}, updated_at = now()
     WHERE (id = ${input.organizationId ?? null}::uuid
            OR stripe_customer_id = ${input.stripeCustomerId ?? null})
       AND (billing_email_at IS NULL OR billing_email_at <= ${input.observedAt})
       AND (billing_email IS DISTINCT FROM ${input.email}
            OR billing_email_at IS DISTINCT FROM ${input.observedAt})`;
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
