import type { Db, SubscriptionStatus } from "@zigznote/database";
import type Stripe from "stripe";
import { recordStandingFact } from "../dunning/paymentStanding";
import { idOf } from "../stripe/lookup";
import { customerIdOf, subscriptionPeriod } from "../stripe/provider";
import { FREE_PLAN_SLUG, type BillingSettings } from "../settings";
import * as store from "./store";
import { checkPlanViolations, type ViolationCheckResult } from "../limits/violations";

/**
 * Local copies of Stripe subscriptions. Two writers meet here, in any order: the API path that
 * just called Stripe, and Stripe's webhooks. Every write is one `INSERT ... ON CONFLICT` on the
 * Stripe id that only applies when it is not older than what the row reflects
 * (`lastEventCreatedAt`, Stripe's second-resolution event time; the API path stamps its own
 * time floored to the second), and a canceled subscription is final (Stripe cannot revive it).
 * The status is also written by invoice outcomes, so it is not taken from the event as is: it
 * goes through the payment standing (paymentStanding.ts), ordered against those too.
 */

export { PLAN_GRANTING_STATUSES } from "./statuses";

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
  /** The clock when it arrives, for the payment standing. */
  now: Date;
  subscription: Stripe.Subscription;
}

/** The caller's transaction, and the grace period and notices for the payment standing. */
export interface SubscriptionSyncDeps {
  db: Db;
  settings: Pick<BillingSettings, "gracePeriodDays" | "notices">;
}

/**
 * Applies Stripe's view of a subscription; returns false when it was stale (nothing changed).
 * The plan, period and cancellation follow the newest subscription event; the status follows
 * the payment standing, to which a past_due/unpaid status is a fact even when the event is older
 * than the row (a payment failed then, whatever came since, unless a later payment covers it).
 */
export async function upsertSubscriptionFromStripe(
  deps: SubscriptionSyncDeps,
  input: UpsertSubscriptionInput,
): Promise<boolean> {
  const { subscription } = input;
  const status: SubscriptionStatus = input.deleted
    ? "canceled"
    : mapStripeStatus(subscription.status);
  const period = subscriptionPeriod(subscription);
  const canceledAt = subscription.canceled_at ? new Date(subscription.canceled_at * 1000) : null;
  const isLatest = await store.upsertSubscription(deps.db, {
    organizationId: input.organizationId,
    planSlug: input.planSlug,
    stripeSubscriptionId: subscription.id,
    stripeCustomerId: customerIdOf(subscription),
    status,
    currentPeriodStart: period.start,
    currentPeriodEnd: period.end,
    cancelAtPeriodEnd: subscription.cancel_at_period_end ?? false,
    canceledAt,
    defaultPaymentMethodId: idOf(subscription.default_payment_method),
    trialEnd: subscription.trial_end ? new Date(subscription.trial_end * 1000) : null,
    observedAt: input.observedAt,
  });
  const standing = await recordStandingFact(deps, {
    stripeSubscriptionId: subscription.id,
    fact: {
      kind: "subscription",
      at: input.observedAt,
      stripeStatus: status,
      isLatest,
      // The invoice a past_due/unpaid status is about: its void withdraws the fact.
      invoiceId: idOf(subscription.latest_invoice) ?? undefined,
    },
    now: input.now,
  });
  return isLatest || (standing?.changed ?? false);
}

/**
 * Sets the organization's plan from its subscriptions (the newest plan-granting one, else free)
 * and, when the plan changed, re-checks its violations in the same transaction.
 */
export async function syncOrganizationPlan(
  deps: { db: Db; settings: BillingSettings },
  input: { organizationId: string; now: Date },
): Promise<{ planSlug: string; changed: boolean; check: ViolationCheckResult | null }> {
  const { organizationId } = input;
  const row = await store.syncPlanFromSubscriptions(deps.db, {
    organizationId,
    freePlanSlug: FREE_PLAN_SLUG,
  });
  if (!row) return { planSlug: FREE_PLAN_SLUG, changed: false, check: null };
  if (row.previous === row.next) return { planSlug: row.next, changed: false, check: null };
  const check = await checkPlanViolations(deps, input);
  return { planSlug: row.next, changed: true, check };
}
