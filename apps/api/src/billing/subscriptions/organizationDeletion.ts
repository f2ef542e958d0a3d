import type { Db } from "@zigznote/database";
import Stripe from "stripe";
import type { Logger } from "../../lib/logger";
import {
  PermanentProviderCallError,
  type ProviderCallExecutor,
  type ProviderCalls,
} from "../../providerCalls";
import { idempotencyKey, type StripeClient } from "../stripe/provider";
import * as store from "./store";

/**
 * A deleted organization is billed no more (BILLING.md, "Deleting an organization"): the
 * transaction that records the deletion queues the cancellation of each of its subscriptions
 * that Stripe may still bill, one provider call per subscription (`provider_calls`, unique per
 * subscription); the call is made after the commit and retried by the `retryProviderCalls` job
 * until Stripe says the subscription is canceled. Stripe's `customer.subscription.deleted` then
 * records it like any cancellation. A subscription of a deleted organization that shows up live
 * later (a Checkout Session paid after the deletion, a change in flight at the time) is queued
 * the same way by its own event (`subscriptions/events.ts`).
 *
 * Canceled now, without proration and without a final invoice: nothing more is charged (not
 * even pending proration items), and no credit is made, because a credit on the balance of a
 * customer who will never be invoiced again is worth nothing to them. The unused part of the
 * period is refunded by an operator on request (Stripe's dashboard), as for a duplicate.
 */

export const CANCEL_SUBSCRIPTION_CALL = "stripe.subscription.cancel";

/** Why the calls below are queued (recorded on the call). */
export const ORGANIZATION_DELETED = "organization_deleted";

/** Queues, in `db` (the deletion's transaction), the cancellation of each unended subscription. */
export async function queueSubscriptionCancels(
  deps: { db: Db; calls: Pick<ProviderCalls, "enqueue"> },
  input: { organizationId: string; stripeSubscriptionIds?: string[] },
): Promise<number> {
  const { organizationId } = input;
  const ids =
    input.stripeSubscriptionIds ??
    (await store.findUnendedStripeSubscriptionIds(deps.db, { organizationId }));
  return deps.calls.enqueue(
    deps.db,
    ids.map((id) => ({
      organizationId,
      kind: CANCEL_SUBSCRIPTION_CALL,
      target: id,
      reason: ORGANIZATION_DELETED,
    })),
  );
}

/**
 * Cancels the call's subscription at Stripe, now, with an idempotency key of the subscription (a
 * retry after a lost answer replays the first). A subscription already canceled (by the customer,
 * by Stripe, by an earlier attempt whose answer was lost more than a day ago) is done too.
 */
export function cancelSubscriptionCall(deps: {
  stripe: StripeClient | null | undefined;
  logger: Logger;
}): ProviderCallExecutor {
  return async (call) => {
    const { stripe } = deps;
    if (!stripe) {
      throw new PermanentProviderCallError(
        "Stripe is not configured (STRIPE_SECRET_KEY): cancel the subscription by hand",
      );
    }
    try {
      const canceled = await stripe.subscriptions.cancel(
        call.target,
        {
          prorate: false,
          invoice_now: false,
          cancellation_details: { comment: "The zigznote organization was deleted" },
        },
        { idempotencyKey: idempotencyKey("organization-deleted", call.target, "cancel") },
      );
      return canceled.status === "canceled" ? "canceled" : `canceled (${canceled.status})`;
    } catch (error) {
      if (
        error instanceof Stripe.errors.StripeInvalidRequestError &&
        error.code === "resource_missing"
      ) {
        deps.logger.info(
          { subscriptionId: call.target },
          "subscription of a deleted organization was already canceled at Stripe",
        );
        return "already_canceled";
      }
      throw error;
    }
  };
}
