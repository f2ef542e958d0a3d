import type { Db, SubscriptionStatus } from "@zigznote/database";
import type Stripe from "stripe";
import { recordStandingFact } from "./paymentStanding";
import { customerIdOf, subscriptionPeriod } from "./stripeProvider";
import { FREE_PLAN_SLUG, type BillingSettings } from "./settings";
import { checkPlanViolations, type ViolationCheckResult } from "./violations";

/**
 * Local copies of Stripe subscriptions. Two writers meet here, in any order: the API path that
 * just called Stripe, and Stripe's webhooks. Every write is one `INSERT ... ON CONFLICT` on the
 * Stripe id that only applies when it is not older than what the row reflects
 * (`lastEventCreatedAt`, Stripe's second-resolution event time; the API path stamps its own
 * time floored to the second), and a canceled subscription is final (Stripe cannot revive it).
 * The status is also written by invoice outcomes, so it is not taken from the event as is: it
 * goes through the payment standing (paymentStanding.ts), ordered against those too.
 */

/** Statuses under which the subscription's plan is the organization's plan. */
export const PLAN_GRANTING_STATUSES: readonly SubscriptionStatus[] = [
  "active",
  "trialing",
  "past_due",
  "suspended",
  "unpaid",
];

const STRIPE_STATUSES: ReadonlySet<string> = new Set([
  "incomplete",
  "incomplete_expired",
  "trialing",
  "active",
  "past_due",
  "unpaid",
  "paused",
  "canceled",
]);

/** Stripe's status as ours (the same names; `suspended` is ours alone). */
export function mapStripeStatus(status: string): SubscriptionStatus {
  if (!STRIPE_STATUSES.has(status)) throw new Error(`unknown Stripe subscription status ${status}`);
  return status as SubscriptionStatus;
}

/** A time as the API path's ordering stamp: floored to Stripe's one-second resolution. */
export function toEventTime(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 1000) * 1000);
}

export interface UpsertSubscriptionInput {
  organizationId: string;
  planSlug: string;
  /** Stripe's event time, or the API path's `toEventTime(now)`. */
  observedAt: Date;
  /** True for `customer.subscription.deleted` (whatever status the payload carries). */
  deleted?: boolean;
  /** The clock when it arrives, and the grace period and notices, for the payment standing. */
  now: Date;
  settings: Pick<BillingSettings, "gracePeriodDays" | "notices">;
}

/**
 * Applies Stripe's view of a subscription; returns false when it was stale (nothing changed).
 * The plan, period and cancellation follow the newest subscription event; the status follows
 * the payment standing, to which a past_due/unpaid status is a fact even when the event is older
 * than the row (a payment failed then, whatever came since, unless a later payment covers it).
 */
export async function upsertSubscriptionFromStripe(
  tx: Db,
  subscription: Stripe.Subscription,
  input: UpsertSubscriptionInput,
): Promise<boolean> {
  const status: SubscriptionStatus = input.deleted
    ? "canceled"
    : mapStripeStatus(subscription.status);
  const period = subscriptionPeriod(subscription);
  const canceledAt = subscription.canceled_at ? new Date(subscription.canceled_at * 1000) : null;
  const rows = await tx.$queryRaw<{ id: string }[]>`
    INSERT INTO subscriptions
      (organization_id, plan_slug, stripe_subscription_id, stripe_customer_id, status,
       current_period_start, current_period_end, cancel_at_period_end, canceled_at,
       last_event_created_at)
    VALUES (${input.organizationId}::uuid, ${input.planSlug}, ${subscription.id},
            ${customerIdOf(subscription)}, ${status}::"SubscriptionStatus",
            ${period.start}, ${period.end}, ${subscription.cancel_at_period_end ?? false},
            ${canceledAt}, ${input.observedAt})
    ON CONFLICT (stripe_subscription_id) DO UPDATE SET
      plan_slug = EXCLUDED.plan_slug,
      -- Only the end is taken as is; the payment standing below derives any other status.
      status = CASE WHEN EXCLUDED.status = 'canceled'
                    THEN EXCLUDED.status ELSE subscriptions.status END,
      current_period_start = COALESCE(EXCLUDED.current_period_start, subscriptions.current_period_start),
      current_period_end = COALESCE(EXCLUDED.current_period_end, subscriptions.current_period_end),
      cancel_at_period_end = EXCLUDED.cancel_at_period_end,
      canceled_at = COALESCE(EXCLUDED.canceled_at, subscriptions.canceled_at),
      last_event_created_at = EXCLUDED.last_event_created_at,
      updated_at = now()
    WHERE subscriptions.status <> 'canceled'
      AND (subscriptions.last_event_created_at IS NULL
           OR subscriptions.last_event_created_at <= EXCLUDED.last_event_created_at)
    RETURNING id`;
  const isLatest = rows.length > 0;
  const standing = await recordStandingFact(
    tx,
    subscription.id,
    { kind: "subscription", at: input.observedAt, stripeStatus: status, isLatest },
    input.now,
    input.settings,
  );
  return isLatest || (standing?.changed ?? false);
}

/**
 * Sets the organization's plan from its subscriptions (the newest plan-granting one, else free)
 * and, when the plan changed, re-checks its violations in the same transaction.
 */
export async function syncOrganizationPlan(
  tx: Db,
  organizationId: string,
  now: Date,
  settings: BillingSettings,
): Promise<{ planSlug: string; changed: boolean; check: ViolationCheckResult | null }> {
  const rows = await tx.$queryRaw<{ previous: string; next: string }[]>`
    WITH target AS (
      SELECT COALESCE(
        (SELECT plan_slug FROM subscriptions
          WHERE organization_id = ${organizationId}::uuid
            AND status IN ('active', 'trialing', 'past_due', 'suspended', 'unpaid')
          ORDER BY created_at DESC, id DESC LIMIT 1),
        ${FREE_PLAN_SLUG}) AS slug),
    previous AS (
      SELECT plan_slug FROM organizations WHERE id = ${organizationId}::uuid FOR UPDATE)
    UPDATE organizations o SET plan_slug = target.slug, updated_at = now()
      FROM target, previous
     WHERE o.id = ${organizationId}::uuid
    RETURNING previous.plan_slug AS previous, o.plan_slug AS next`;
  const row = rows[0];
  if (!row) return { planSlug: FREE_PLAN_SLUG, changed: false, check: null };
  if (row.previous === row.next) return { planSlug: row.next, changed: false, check: null };
  const check = await checkPlanViolations(tx, organizationId, now, settings);
  return { planSlug: row.next, changed: true, check };
}
