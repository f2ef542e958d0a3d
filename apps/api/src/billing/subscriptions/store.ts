import {
  Prisma,
  type Db,
  type Organization,
  type Plan,
  type Subscription,
  type SubscriptionStatus,
} from "@zigznote/database";
import { PLAN_GRANTING_STATUSES, statusInSql } from "./statuses";

/**
 * The `subscriptions` table (local copies of Stripe's subscriptions), the organization's plan
 * that follows from them, and the organization's billing lease: every query and conditional
 * update of those, nothing else. The rules live in `changes.ts`, `sync.ts` and `events.ts`;
 * each race-safe step is one statement (row locks, conditional updates, ON CONFLICT).
 */

export interface OrganizationKey {
  organizationId: string;
}

/** The organization's plan-granting subscription, if any (the newest). */
export function findLiveSubscription(db: Db, input: OrganizationKey): Promise<Subscription | null> {
  return db.subscription.findFirst({
    where: { organizationId: input.organizationId, status: { in: [...PLAN_GRANTING_STATUSES] } },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
}

/**
 * The Stripe ids of the organization's subscriptions that Stripe may still bill: every one not
 * canceled or expired unpaid (a trial, an incomplete one, one set to end at its period's end).
 */
export async function findUnendedStripeSubscriptionIds(
  db: Db,
  input: OrganizationKey,
): Promise<string[]> {
  const rows = await db.subscription.findMany({
    where: {
      organizationId: input.organizationId,
      status: { notIn: ["canceled", "incomplete_expired"] },
    },
    select: { stripeSubscriptionId: true },
    orderBy: { stripeSubscriptionId: "asc" },
  });
  return rows.map((row) => row.stripeSubscriptionId);
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

/**
 * Sets a platform admin's comp of a suspended subscription (the write guard lets the
 * organization write until `compUntil`) if its version is still `expectedVersion`, bumping it.
 * False when the version moved on.
 */
export async function compSubscription(
  db: Db,
  input: { id: string; expectedVersion: number; compUntil: Date; now: Date },
): Promise<boolean> {
  const updated = await db.$executeRaw`
    UPDATE subscriptions
       SET comp_until = ${input.compUntil}, version = version + 1, updated_at = ${input.now}
     WHERE id = ${input.id}::uuid AND version = ${input.expectedVersion}`;
  return updated > 0;
}

// ---- organizations: lock, plan ----

/**
 * Locks the organization row (FOR UPDATE) for the rest of the transaction: a subscription that
 * would become its live one is decided under it, so two arriving at once are decided in turn;
 * a platform admin's edit takes it too, so it is ordered against billing's checks. False when
 * there is no such organization.
 */
export async function lockOrganization(db: Db, input: OrganizationKey): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations WHERE id = ${input.organizationId}::uuid FOR UPDATE`;
  return rows.length > 0;
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
