import type { Subscription, SubscriptionStatus } from "@zigznote/database";
import type Stripe from "stripe";
import { afterCommit } from "../../lib/afterCommit";
import * as planStore from "../plans/store";
import type { BillingEventDeps } from "../settings";
import type { HandlerOutcome, StripeEventDeps } from "../stripe/eventOutcome";
import { findOrganizationId } from "../stripe/lookup";
import {
  cancelDuplicateSubscription,
  customerIdOf,
  firstItem,
  idempotencyKey,
} from "../stripe/provider";
import { stopSubscriptionOfDeletedOrganization } from "./organizationDeletion";
import { PLAN_GRANTING_STATUSES } from "./statuses";
import * as store from "./store";
import { syncOrganizationPlan, upsertSubscriptionFromStripe } from "./sync";

/**
 * Stripe's subscription events, applied in the transaction the webhook framework claims the
 * event in (`deps.db`). They never call Stripe inside it: cancelling a duplicate subscription
 * is registered to run after the commit.
 */

/**
 * `customer.subscription.created` / `.updated` / `.deleted`: keeps the local subscription and the
 * organization's plan (from the price via Plan.stripePriceId; a recorded subscription on a price
 * no plan has keeps its plan) in step with Stripe. Older events
 * than the last applied one, and anything after a deletion, change nothing, except that a
 * past_due/unpaid status is a fact for the payment standing even when older (paymentStanding.ts).
 */
export async function handleSubscriptionEvent(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const subscription = event.data.object as Stripe.Subscription;
  const priceId = firstItem(subscription)?.price?.id;
  const planSlug =
    (priceId ? await planStore.findPlanSlugByPrice(deps.db, { stripePriceId: priceId }) : null) ??
    (await recordedPlanSlug(deps, event, priceId));
  if (!planSlug) {
    deps.logger.warn(
      { eventId: event.id, subscriptionId: subscription.id, priceId },
      "Stripe subscription with a price no plan has: ignored",
    );
    return { applied: false, reason: "unknown_price" };
  }
  const organizationId = await findOrganizationId(
    deps.db,
    customerIdOf(subscription),
    subscription.metadata?.organizationId,
  );
  if (!organizationId) {
    deps.logger.warn(
      { eventId: event.id, subscriptionId: subscription.id },
      "Stripe subscription of an unknown customer: ignored",
    );
    return { applied: false, reason: "unknown_customer" };
  }
  // A deleted organization's subscriptions are all canceled: there is no first one to keep.
  const duplicate = (await cancelIfOrganizationDeleted(deps, event, organizationId))
    ? null
    : await checkDuplicate(deps, event, { organizationId, planSlug });
  if (duplicate) return duplicate;
  const applied = await upsertSubscriptionFromStripe(deps, {
    subscription,
    organizationId,
    planSlug,
    observedAt: new Date(event.created * 1000),
    deleted: event.type === "customer.subscription.deleted",
    now: deps.clock.now(),
  });
  if (!applied) return { applied: false, reason: "stale", organizationId };
  await syncOrganizationPlan(deps, { organizationId, now: deps.clock.now() });
  return { applied: true, organizationId };
}

/**
 * The plan of a subscription we track whose price no plan has (any more): a price rotated in
 * STRIPE_PRICE_<PLAN>, a grandfathered or negotiated price set in Stripe's dashboard. It keeps
 * the plan it was recorded with, and its events (period, cancellation, deletion) still apply:
 * ignoring them would leave the organization on a paid plan Stripe no longer bills.
 */
async function recordedPlanSlug(
  deps: StripeEventDeps,
  event: Stripe.Event,
  priceId: string | undefined,
): Promise<string | null> {
  const subscription = event.data.object as Stripe.Subscription;
  const known = await store.findSubscriptionByStripeId(deps.db, {
    stripeSubscriptionId: subscription.id,
  });
  if (!known) return null;
  deps.logger.warn(
    { eventId: event.id, subscriptionId: subscription.id, priceId, planSlug: known.planSlug },
    "Stripe subscription on a price no plan has: it keeps its recorded plan",
  );
  return known.planSlug;
}

/**
 * A deleted organization is billed no more: a subscription of one that Stripe shows still
 * running is queued for cancellation, once (the queue keeps one call per subscription), in this
 * event's transaction; one the organization did not have when it was deleted (a Checkout
 * Session paid after the deletion, a plan change that was in flight, one made in Stripe's
 * dashboard) has the payment it took refunded too (`stopSubscriptionOfDeletedOrganization`).
 * The event itself is then applied as usual. True when the organization is deleted.
 */
async function cancelIfOrganizationDeleted(
  deps: StripeEventDeps,
  event: Stripe.Event,
  organizationId: string,
): Promise<boolean> {
  const subscription = event.data.object as Stripe.Subscription;
  if (await store.isLiveOrganization(deps.db, { organizationId })) return false;
  if (
    event.type === "customer.subscription.deleted" ||
    ["canceled", "incomplete_expired"].includes(subscription.status)
  ) {
    return true;
  }
  await stopSubscriptionOfDeletedOrganization(deps, {
    eventId: event.id,
    organizationId,
    stripeSubscriptionId: subscription.id,
  });
  return true;
}

const isPlanGranting = (status: string) =>
  PLAN_GRANTING_STATUSES.includes(status as SubscriptionStatus);

/**
 * One subscription per organization. A subscription that would grant a plan while the
 * organization already has another live one (a Checkout Session paid in the instant before it
 * was expired, two sessions paid in two tabs, a subscription made in Stripe's dashboard) is not
 * tracked as a second plan: the one recorded first is kept, the newcomer is recorded as canceled
 * (so it never grants a plan, and its later events change nothing), the admins get a
 * `billing.duplicate_subscription_canceled` notice, and after commit it is canceled at Stripe,
 * prorated with the credit invoiced at once (it lands on the customer's balance). The decision is
 * made under the organization's row lock, so two newcomers at once are decided in turn; it is
 * exactly-once because the framework applies each event once, the notice has a dedupe key and the
 * cancel an idempotency key of the subscription. Should the cancel not reach Stripe, a later
 * event showing the subscription still live (newer than our decision: Stripe never revives a
 * canceled subscription, so only ours can be canceled here and live there) sends it again.
 */
async function checkDuplicate(
  deps: StripeEventDeps,
  event: Stripe.Event,
  input: { organizationId: string; planSlug: string },
): Promise<HandlerOutcome | null> {
  const subscription = event.data.object as Stripe.Subscription;
  const { organizationId } = input;
  if (event.type === "customer.subscription.deleted" || !isPlanGranting(subscription.status)) {
    return null;
  }
  const known = await store.findSubscriptionByStripeId(deps.db, {
    stripeSubscriptionId: subscription.id,
  });
  if (known?.status === "canceled") {
    if (known.canceledAt && event.created * 1000 > known.canceledAt.getTime()) {
      const notice = await store.findNoticeOfCause(deps.db, {
        organizationId,
        dedupeKey: duplicateNoticeKey(subscription.id),
      });
      if (notice) {
        scheduleDuplicateCancel(deps, { organizationId, stripeSubscriptionId: subscription.id });
        return { applied: false, reason: "duplicate_cancel_retried", organizationId };
      }
    }
    return null;
  }
  if (known && isPlanGranting(known.status)) return null;
  await store.lockOrganization(deps.db, { organizationId });
  const live = await store.findLiveSubscription(deps.db, { organizationId });
  if (!live || live.stripeSubscriptionId === subscription.id) return null;
  await refuseDuplicate(deps, event, { ...input, kept: live });
  return { applied: true, reason: "duplicate_canceled", organizationId };
}

function duplicateNoticeKey(stripeSubscriptionId: string): string {
  return `duplicate-subscription:${stripeSubscriptionId}`;
}

async function refuseDuplicate(
  deps: StripeEventDeps,
  event: Stripe.Event,
  input: { organizationId: string; planSlug: string; kept: Subscription },
): Promise<void> {
  const subscription = event.data.object as Stripe.Subscription;
  const { organizationId, planSlug, kept } = input;
  await upsertSubscriptionFromStripe(deps, {
    subscription: { ...subscription, canceled_at: event.created },
    organizationId,
    planSlug,
    observedAt: new Date(event.created * 1000),
    deleted: true,
    now: deps.clock.now(),
  });
  await deps.settings.notices.enqueue(deps.db, [
    {
      organizationId,
      type: "billing.duplicate_subscription_canceled",
      payload: {
        keptSubscriptionId: kept.stripeSubscriptionId,
        keptPlanSlug: kept.planSlug,
        canceledSubscriptionId: subscription.id,
        canceledPlanSlug: planSlug,
      },
      dedupeKey: duplicateNoticeKey(subscription.id),
    },
  ]);
  deps.logger.warn(
    {
      eventId: event.id,
      organizationId,
      kept: kept.stripeSubscriptionId,
      canceled: subscription.id,
    },
    "second live subscription of an organization: kept the first, canceling the newcomer",
  );
  scheduleDuplicateCancel(deps, { organizationId, stripeSubscriptionId: subscription.id });
}

/** Cancels the duplicate at Stripe once the decision committed (never inside the transaction). */
function scheduleDuplicateCancel(
  deps: BillingEventDeps,
  input: { organizationId: string; stripeSubscriptionId: string },
): void {
  const { stripe, logger } = deps;
  if (!stripe) {
    logger.error(input, "duplicate subscription not canceled: Stripe is not configured");
    return;
  }
  afterCommit(async () => {
    try {
      await cancelDuplicateSubscription(
        stripe,
        input.stripeSubscriptionId,
        idempotencyKey("duplicate", input.stripeSubscriptionId, "cancel"),
      );
    } catch (error) {
      logger.error(
        { err: error, ...input },
        "duplicate subscription not canceled at Stripe; retried on its next live event, or cancel it by hand",
      );
    }
  });
}
