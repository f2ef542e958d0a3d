import type { Db } from "@zigznote/database";
import Stripe from "stripe";
import type { Logger } from "../../lib/logger";
import {
  PermanentProviderCallError,
  type ProviderCallExecutor,
  type ProviderCalls,
} from "../../providerCalls";
import * as customerStore from "../customers/store";
import type { HandlerOutcome, StripeEventDeps } from "../stripe/eventOutcome";
import { idOf } from "../stripe/lookup";
import { idempotencyKey, type StripeClient } from "../stripe/provider";
import { expireCheckoutSession } from "../stripe/sessions";
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
 *
 * Nothing can be bought for it afterwards either: the same transaction queues the expiry of the
 * customer's open Checkout Sessions (one call per customer, `stripe.checkout_sessions.expire`).
 * A subscription that shows up after the deletion anyway (a session paid before its expiry
 * reached Stripe) was bought for an organization that no longer exists: it is canceled and the
 * payment it took is refunded in full (`stripe.subscription.refund`), both queued by whichever
 * of its events arrives first (`stopSubscriptionOfDeletedOrganization`).
 */

export const CANCEL_SUBSCRIPTION_CALL = "stripe.subscription.cancel";

/** Expires the open Checkout Sessions of a deleted organization's customer (target: customer). */
export const EXPIRE_CHECKOUT_SESSIONS_CALL = "stripe.checkout_sessions.expire";

/** Refunds what a subscription bought after the deletion took (target: the subscription). */
export const REFUND_SUBSCRIPTION_CALL = "stripe.subscription.refund";

/** Why the calls below are queued (recorded on the call): by the deletion's transaction. */
export const ORGANIZATION_DELETED = "organization_deleted";

/**
 * Queued by an event of a subscription the organization did not have when it was deleted (a
 * Checkout paid late): it is canceled and refunded.
 */
export const SUBSCRIPTION_AFTER_DELETION = "subscription_after_deletion";

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
    const stripe = configuredStripe(deps.stripe, "cancel the subscription");
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
      if (isStripeCode(error, "resource_missing")) {
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

/**
 * Queues, in `db` (the deletion's transaction), the expiry of the open Checkout Sessions of the
 * organization's Stripe customer (none without a customer: it never opened one).
 */
export async function queueCheckoutSessionsExpiry(
  deps: { db: Db; calls: Pick<ProviderCalls, "enqueue"> },
  input: { organizationId: string },
): Promise<number> {
  const { organizationId } = input;
  const { stripeCustomerId } = await customerStore.findOrganizationCustomer(deps.db, {
    organizationId,
  });
  if (!stripeCustomerId) return 0;
  return deps.calls.enqueue(deps.db, [
    {
      organizationId,
      kind: EXPIRE_CHECKOUT_SESSIONS_CALL,
      target: stripeCustomerId,
      reason: ORGANIZATION_DELETED,
    },
  ]);
}

/**
 * Expires every open Checkout Session of the customer (every page of Stripe's list), each with
 * an idempotency key of the session. A session paid meanwhile cannot be expired (Stripe answers
 * that it is not open; it is read back): its subscription's events cancel and refund it. A
 * session already expired, or a customer deleted at Stripe, leaves nothing to do.
 */
export function expireCheckoutSessionsCall(deps: {
  stripe: StripeClient | null | undefined;
  logger: Logger;
}): ProviderCallExecutor {
  return async (call) => {
    const stripe = configuredStripe(deps.stripe, "expire its Checkout Sessions");
    const customerId = call.target;
    const open: string[] = [];
    try {
      for await (const session of stripe.checkout.sessions.list({
        customer: customerId,
        status: "open",
        limit: 100,
      })) {
        open.push(session.id);
      }
    } catch (error) {
      if (isStripeCode(error, "resource_missing")) {
        deps.logger.info(
          { callId: call.id, organizationId: call.organizationId, customerId },
          "customer of a deleted organization is deleted at Stripe: no Checkout Session to expire",
        );
        return "customer_deleted";
      }
      throw error;
    }
    const expired: string[] = [];
    const paid: string[] = [];
    for (const sessionId of open) {
      const session = await expireCheckoutSession(
        stripe,
        sessionId,
        idempotencyKey("organization-deleted", sessionId, "expire"),
      );
      (session.status === "complete" ? paid : expired).push(sessionId);
    }
    const context = {
      callId: call.id,
      organizationId: call.organizationId,
      customerId,
      expired,
      paid,
    };
    if (paid.length > 0) {
      deps.logger.warn(
        context,
        "Checkout Session of a deleted organization was paid before its expiry: its subscription is canceled and refunded by its events",
      );
    } else {
      deps.logger.info(context, "open Checkout Sessions of a deleted organization expired");
    }
    return paid.length > 0
      ? `expired ${expired.length}; paid before the expiry ${paid.length}`
      : `expired ${expired.length}`;
  };
}

/**
 * A subscription of a deleted organization that Stripe shows live or paid (its
 * `customer.subscription.*` event, the `checkout.session.completed` that bought it, its
 * `invoice.paid`), in that event's transaction. One the organization had when it was deleted
 * had its cancellation queued by the deletion (reason `organization_deleted`): it is canceled,
 * not refunded (BILLING.md), and `had_at_deletion` is answered. Any other was bought after the
 * deletion: its cancellation and the refund of what it took are queued (once each, whichever
 * of its events comes first and however often: one call per kind and subscription).
 */
export async function stopSubscriptionOfDeletedOrganization(
  deps: StripeEventDeps,
  input: { eventId: string; organizationId: string; stripeSubscriptionId: string },
): Promise<"had_at_deletion" | "queued" | "already_queued" | "not_queued"> {
  const { organizationId, stripeSubscriptionId } = input;
  const context = { eventId: input.eventId, organizationId, subscriptionId: stripeSubscriptionId };
  if (!deps.calls) {
    deps.logger.error(
      context,
      "live subscription of a deleted organization not canceled or refunded: no provider-call queue; do it by hand",
    );
    return "not_queued";
  }
  const reason = await deps.calls.reasonOf(deps.db, {
    kind: CANCEL_SUBSCRIPTION_CALL,
    target: stripeSubscriptionId,
  });
  if (reason === ORGANIZATION_DELETED) return "had_at_deletion";
  const queued = await deps.calls.enqueue(
    deps.db,
    [CANCEL_SUBSCRIPTION_CALL, REFUND_SUBSCRIPTION_CALL].map((kind) => ({
      organizationId,
      kind,
      target: stripeSubscriptionId,
      reason: SUBSCRIPTION_AFTER_DELETION,
    })),
  );
  if (queued === 0) return "already_queued";
  deps.logger.warn(
    context,
    "subscription bought after its organization was deleted: its cancellation and refund are queued",
  );
  return "queued";
}

/** The outcome of an event whose subscription `stopSubscriptionOfDeletedOrganization` took. */
export function deletedOrganizationOutcome(
  stopped: "queued" | "already_queued" | "not_queued",
  organizationId: string,
): HandlerOutcome {
  return {
    applied: stopped === "queued",
    reason: "organization_deleted",
    organizationId,
  };
}

/**
 * Refunds in full what the call's subscription took: the payments of each of its paid invoices
 * (Stripe's invoice payments: a PaymentIntent, or a charge without one), each refunded with an
 * idempotency key of the payment, so a retry never refunds twice (and Stripe answering that it
 * is refunded already counts as done). An invoice still open (a payment still processing, e.g.
 * a bank debit) may yet be paid: the call is retried until it is settled. A free first invoice
 * (a trial) took nothing.
 */
export function refundSubscriptionCall(deps: {
  stripe: StripeClient | null | undefined;
  logger: Logger;
}): ProviderCallExecutor {
  return async (call) => {
    const stripe = configuredStripe(deps.stripe, "refund its subscription's payment");
    const subscriptionId = call.target;
    const refunds: string[] = [];
    const unsettled: string[] = [];
    for await (const invoice of stripe.invoices.list({
      subscription: subscriptionId,
      limit: 100,
    })) {
      if (invoice.status === "paid" && invoice.amount_paid > 0) {
        for await (const payment of stripe.invoicePayments.list({
          invoice: invoice.id,
          status: "paid",
          limit: 100,
        })) {
          refunds.push(
            await refundInvoicePayment(stripe, payment, {
              organizationId: call.organizationId,
              subscriptionId,
              invoiceId: invoice.id,
            }),
          );
        }
      } else if ((invoice.status === "open" || invoice.status === "draft") && invoice.amount_due) {
        unsettled.push(invoice.id);
      }
    }
    const context = {
      callId: call.id,
      organizationId: call.organizationId,
      subscriptionId,
      refunds,
    };
    if (unsettled.length > 0) {
      deps.logger.warn(
        { ...context, unsettled },
        "subscription bought after its organization was deleted has an invoice not settled yet: refunded once it is",
      );
      throw new Error(`invoices not settled yet: ${unsettled.join(", ")}`);
    }
    deps.logger.info(
      context,
      "payment of a subscription bought after its organization was deleted refunded",
    );
    return refunds.length > 0 ? `refunded ${refunds.join(", ")}` : "nothing_paid";
  };
}

/** Refunds one invoice payment in full; the refund's id (or `already_refunded`). */
async function refundInvoicePayment(
  stripe: StripeClient,
  payment: Stripe.InvoicePayment,
  input: { organizationId: string; subscriptionId: string; invoiceId: string },
): Promise<string> {
  const paymentIntent = idOf(payment.payment.payment_intent);
  const charge = idOf(payment.payment.charge);
  const paidWith = paymentIntent ?? charge;
  if (!paidWith) {
    throw new PermanentProviderCallError(
      `invoice payment ${payment.id} of ${input.invoiceId} is a ${payment.payment.type}: refund it by hand`,
    );
  }
  try {
    const refund = await stripe.refunds.create(
      {
        ...(paymentIntent ? { payment_intent: paymentIntent } : { charge: paidWith }),
        metadata: { ...input, reason: ORGANIZATION_DELETED },
      },
      { idempotencyKey: idempotencyKey("organization-deleted", paidWith, "refund") },
    );
    return refund.id;
  } catch (error) {
    if (isStripeCode(error, "charge_already_refunded")) return `${paidWith} already_refunded`;
    if (isStripeCode(error, "charge_disputed")) {
      throw new PermanentProviderCallError(
        `${paidWith} is disputed: the bank decides; refund by hand if the dispute is withdrawn`,
        { cause: error },
      );
    }
    throw error;
  }
}

function configuredStripe(stripe: StripeClient | null | undefined, action: string): StripeClient {
  if (!stripe) {
    throw new PermanentProviderCallError(
      `Stripe is not configured (STRIPE_SECRET_KEY): ${action} by hand`,
    );
  }
  return stripe;
}

function isStripeCode(error: unknown, code: string): boolean {
  return error instanceof Stripe.errors.StripeInvalidRequestError && error.code === code;
}
