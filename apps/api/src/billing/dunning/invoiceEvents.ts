import type { Db } from "@zigznote/database";
import type Stripe from "stripe";
import * as customerStore from "../customers/store";
import * as invoiceStore from "../invoices/store";
import {
  SubscriptionNotYetKnownError,
  type HandlerOutcome,
  type StripeEventDeps,
} from "../stripe/eventOutcome";
import { findOrganizationId } from "../stripe/lookup";
import { invoiceCustomerId, invoiceSubscriptionId } from "../stripe/provider";
import {
  deletedOrganizationOutcome,
  stopSubscriptionOfDeletedOrganization,
} from "../subscriptions/organizationDeletion";
import * as subscriptionStore from "../subscriptions/store";
import { recordStandingFact, type StandingChange } from "./paymentStanding";

/**
 * Stripe's invoice outcomes, the dunning side of billing: each failed, paid or unconfirmed
 * invoice is a fact of its subscription's payment standing (paymentStanding.ts), applied in the
 * transaction the webhook framework claims the event in (`deps.db`), with the notices it calls
 * for. An invoice of a subscription we have not recorded yet fails the delivery, so that Stripe
 * retries it once the subscription's own event has arrived.
 */

/** Finds the invoice's subscription or explains why the event is ignored / must be retried. */
async function subscriptionOfInvoice(
  db: Db,
  invoice: Stripe.Invoice,
): Promise<{ stripeSubscriptionId: string } | { outcome: HandlerOutcome }> {
  const stripeSubscriptionId = invoiceSubscriptionId(invoice);
  if (!stripeSubscriptionId) return { outcome: { applied: false, reason: "not_a_subscription" } };
  if (await subscriptionStore.isSubscriptionRecorded(db, { stripeSubscriptionId })) {
    return { stripeSubscriptionId };
  }
  // One of our customers: the subscription event is on its way; fail so Stripe retries.
  if (await findOrganizationId(db, invoiceCustomerId(invoice), undefined)) {
    throw new SubscriptionNotYetKnownError(stripeSubscriptionId);
  }
  return { outcome: { applied: false, reason: "unknown_subscription" } };
}

/**
 * Records an invoice outcome as a payment standing fact of its subscription, or explains why
 * the event is ignored; throws when the subscription is not recorded yet (Stripe retries).
 */
async function recordInvoiceFact(
  deps: StripeEventDeps,
  event: Stripe.Event,
  kind: "payment_failed" | "payment_succeeded" | "payment_action_required",
): Promise<StandingChange | { outcome: HandlerOutcome }> {
  const invoice = event.data.object as Stripe.Invoice;
  const found = await subscriptionOfInvoice(deps.db, invoice);
  if ("outcome" in found) return found;
  const at = new Date(event.created * 1000);
  const change = await recordStandingFact(deps, {
    stripeSubscriptionId: found.stripeSubscriptionId,
    // A failure or a request for authentication is about its invoice (a void withdraws it); a
    // payment covers every older fact, whichever invoice it pays.
    fact: kind === "payment_succeeded" ? { kind, at } : { kind, at, invoiceId: invoice.id ?? "" },
    now: deps.clock.now(),
  });
  if (!change) throw new SubscriptionNotYetKnownError(found.stripeSubscriptionId);
  return change;
}

/** Why a payment event changed nothing: the subscription is canceled, or the event is stale. */
function skipReason(status: string, whenCanceled: string): string {
  return status === "canceled" ? whenCanceled : "stale_payment_event";
}

/**
 * `invoice.payment_failed`: a delinquency fact (paymentStanding.ts): past_due, the grace period
 * started by the oldest unpaid failure, the retry count (failures not covered by a later payment,
 * under the row lock so concurrent failures all count), and one dunning notice per failure up
 * to MAX_RETRY_COUNT, the last naming the suspension date (also the last when Stripe schedules no
 * further attempt: `next_payment_attempt` null). A failure older than the latest
 * payment is stale: the customer has paid since. Arriving after the grace ended, it suspends.
 */
export async function handlePaymentFailed(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const change = await recordInvoiceFact(deps, event, "payment_failed");
  if ("outcome" in change) return change.outcome;
  const { organizationId, next } = change;
  await customerStore.setBillingEmail(deps.db, {
    organizationId,
    email: invoice.customer_email ?? null,
    observedAt: new Date(event.created * 1000),
  });
  if (!change.recorded) {
    // A stale failure may still find the grace over (suspended now): no dunning notice, though.
    if (change.changed) return { applied: true, organizationId };
    return {
      applied: false,
      reason: skipReason(change.previous.status, "canceled"),
      organizationId,
    };
  }
  const attempt = next.paymentRetryCount;
  const max = deps.settings.maxRetryCount;
  // Stripe will not try again (its retry schedule ended, or it never retries this invoice): the
  // last notice says so, whatever our count; "Stripe will try again" would not be true.
  const isLastAttempt = invoice.next_payment_attempt === null;
  if (attempt <= max && next.graceEndsAt) {
    const isFinal = attempt === max || isLastAttempt;
    await deps.settings.notices.enqueue(deps.db, [
      {
        organizationId,
        type: isFinal ? "billing.payment_failed.final" : "billing.payment_failed",
        payload: {
          subscriptionId: change.subscriptionId,
          failedAt: new Date(event.created * 1000).toISOString(),
          attempt,
          // No further attempt: this one was the last ("2 of 2", not "2 of 4").
          maxAttempts: isLastAttempt ? attempt : max,
          invoiceId: invoice.id,
          amountDue: invoice.amount_due,
          currency: invoice.currency,
          hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
          graceEndsAt: next.graceEndsAt.toISOString(),
          ...(isFinal ? { suspendsAt: next.graceEndsAt.toISOString() } : {}),
        },
        dedupeKey: `dunning:${event.id}`,
      },
    ]);
  }
  return { applied: true, organizationId };
}

/**
 * `invoice.paid` / `invoice.payment_succeeded`: covers every delinquency fact older than it,
 * so back to active with the grace fields cleared, from past_due or from suspended (Stripe may
 * still collect after our grace ended), unless a failure newer than the payment is outstanding.
 * A payment older than the latest one changes nothing. A payment of a subscription bought for
 * an organization already deleted is not recorded: the subscription's cancellation and the
 * refund are queued (`paidAfterDeletion`), even before its own events arrive.
 */
export async function handlePaymentSucceeded(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const afterDeletion = await paidAfterDeletion(deps, event);
  if (afterDeletion) return afterDeletion;
  const change = await recordInvoiceFact(deps, event, "payment_succeeded");
  if ("outcome" in change) return change.outcome;
  const { organizationId, previous, next } = change;
  await customerStore.setBillingEmail(deps.db, {
    organizationId,
    email: invoice.customer_email ?? null,
    observedAt: new Date(event.created * 1000),
  });
  // This invoice no longer waits for the customer's confirmation, whatever the standing says.
  const wasWaiting = await invoiceStore.resolveConfirmation(deps.db, {
    ...confirmationOf(invoice, organizationId, change.subscriptionId),
    resolution: "paid",
    resolvedAt: new Date(event.created * 1000),
  });
  if (!change.recorded) {
    if (change.changed || wasWaiting) return { applied: true, organizationId };
    return { applied: false, reason: skipReason(previous.status, "not_payable"), organizationId };
  }
  if (previous.status === "suspended" && next.status !== "suspended") {
    await deps.settings.notices.enqueue(deps.db, [
      {
        organizationId,
        type: "billing.access_restored",
        payload: { invoiceId: invoice.id, subscriptionId: change.subscriptionId },
        dedupeKey: `restored:${event.id}`,
      },
    ]);
  }
  return { applied: true, organizationId };
}

/**
 * The payment of a deleted organization's subscription: one it did not have at its deletion (a
 * Checkout paid late) is canceled and refunded, whichever of its events comes first; null for a
 * live organization, or a subscription it had (that payment is recorded as before).
 */
async function paidAfterDeletion(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome | null> {
  const invoice = event.data.object as Stripe.Invoice;
  const stripeSubscriptionId = invoiceSubscriptionId(invoice);
  if (!stripeSubscriptionId) return null;
  const organizationId = await findOrganizationId(
    deps.db,
    invoiceCustomerId(invoice),
    invoice.parent?.subscription_details?.metadata?.organizationId,
  );
  if (!organizationId) return null;
  if (await subscriptionStore.isLiveOrganization(deps.db, { organizationId })) return null;
  const stopped = await stopSubscriptionOfDeletedOrganization(deps, {
    eventId: event.id,
    organizationId,
    stripeSubscriptionId,
  });
  if (stopped === "had_at_deletion") return null;
  return deletedOrganizationOutcome(stopped, organizationId);
}

function confirmationOf(
  invoice: Stripe.Invoice,
  organizationId: string,
  subscriptionId: string | null,
): invoiceStore.ConfirmationWrite {
  return {
    stripeInvoiceId: invoice.id,
    organizationId,
    subscriptionId,
    amountDue: invoice.amount_due,
    currency: invoice.currency,
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
  };
}

/**
 * `invoice.payment_action_required`: the renewal needs the customer to authenticate (3-D
 * Secure). The card may be fine, but the invoice is unpaid, so it is a delinquency fact like a
 * failure (paymentStanding.ts: it starts the grace period, ordered by `created`, without
 * counting as a failed attempt), and the invoice waits for confirmation (shown by
 * `GET /billing/subscription`) until it is paid or voided. One "Confirm your payment" notice
 * per invoice, with its hosted page, where the bank asks for the confirmation. A request for an
 * invoice already paid or voided changes nothing and tells nobody.
 */
export async function handlePaymentActionRequired(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const change = await recordInvoiceFact(deps, event, "payment_action_required");
  if ("outcome" in change) return change.outcome;
  const { organizationId, previous, next } = change;
  const requiredAt = new Date(event.created * 1000);
  await customerStore.setBillingEmail(deps.db, {
    organizationId,
    email: invoice.customer_email ?? null,
    observedAt: requiredAt,
  });
  if (previous.status === "canceled") return { applied: false, reason: "canceled", organizationId };
  const isWaiting = await invoiceStore.recordConfirmationRequired(deps.db, {
    ...confirmationOf(invoice, organizationId, change.subscriptionId),
    requiredAt,
  });
  if (!isWaiting) {
    return { applied: change.changed, reason: "invoice_already_settled", organizationId };
  }
  await deps.settings.notices.enqueue(deps.db, [
    {
      organizationId,
      type: "billing.payment_action_required",
      payload: {
        subscriptionId: change.subscriptionId,
        invoiceId: invoice.id,
        amountDue: invoice.amount_due,
        currency: invoice.currency,
        hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
        requiredAt: requiredAt.toISOString(),
        graceEndsAt: next.graceEndsAt?.toISOString() ?? null,
      },
      dedupeKey: `action-required:${invoice.id}`,
    },
  ]);
  return { applied: true, organizationId };
}

/**
 * `invoice.voided`: nothing is owed on the invoice any more (final). A fact of the payment
 * standing (paymentStanding.ts): the invoice's failures, its request for authentication and the
 * past_due subscription events naming it stop counting, now and when they arrive later (Stripe's
 * events come in any order). With nothing else outstanding the subscription is active again,
 * grace cleared; a suspension due to it alone is lifted (with the "access restored" notice);
 * other invoices' failures keep their grace and suspension date. It no longer waits for a
 * confirmation either. Dunning notices of the invoice still queued are skipped when their turn
 * comes (noticeRelevance.ts).
 *
 * `invoice.marked_uncollectible` is deliberately not handled: an uncollectible invoice is still
 * owed and can still be paid (Stripe marks invoices so itself when its retries are exhausted);
 * see project_docs/BILLING.md.
 */
export async function handleInvoiceVoided(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const found = await subscriptionOfInvoice(deps.db, invoice);
  if ("outcome" in found) return found.outcome;
  const voidedAt = new Date(event.created * 1000);
  const change = await recordStandingFact(deps, {
    stripeSubscriptionId: found.stripeSubscriptionId,
    fact: { kind: "invoice_voided", at: voidedAt, invoiceId: invoice.id ?? "" },
    now: deps.clock.now(),
  });
  if (!change) throw new SubscriptionNotYetKnownError(found.stripeSubscriptionId);
  const { organizationId, previous, next } = change;
  const wasWaiting = await invoiceStore.resolveConfirmation(deps.db, {
    ...confirmationOf(invoice, organizationId, change.subscriptionId),
    resolution: "voided",
    resolvedAt: voidedAt,
  });
  if (previous.status === "suspended" && next.status !== "suspended") {
    await deps.settings.notices.enqueue(deps.db, [
      {
        organizationId,
        type: "billing.access_restored",
        payload: {
          invoiceId: invoice.id,
          subscriptionId: change.subscriptionId,
          reason: "invoice_voided",
        },
        dedupeKey: `restored:${event.id}`,
      },
    ]);
  }
  deps.logger.info(
    {
      eventId: event.id,
      invoiceId: invoice.id,
      wasWaiting,
      withdrawn: previous.paymentRetryCount - next.paymentRetryCount,
      status: next.status,
    },
    "invoice voided: nothing is owed on it",
  );
  return { applied: change.changed || wasWaiting, organizationId };
}
