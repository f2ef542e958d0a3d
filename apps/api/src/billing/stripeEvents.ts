import type { Db, PrismaClient } from "@zigznote/database";
import type Stripe from "stripe";
import { transaction } from "../lib/afterCommit";
import type { Notices } from "../notifications";
import { recordStandingFact, suspensionNotice, type StandingChange } from "./paymentStanding";
import type { BillingEventDeps } from "./settings";
import {
  customerIdOf,
  firstItem,
  invoiceCustomerId,
  invoiceSubscriptionId,
} from "./stripeProvider";
import * as store from "./store";
import { syncOrganizationPlan, upsertSubscriptionFromStripe } from "./subscriptionSync";

/**
 * Stripe event handlers: pure functions over the caller's transaction (the webhook framework
 * claims the event and runs the handler in one transaction; a throw rolls both back and Stripe
 * retries). They never call Stripe. Each returns what it did, for logs and tests.
 */

export interface HandlerOutcome {
  applied: boolean;
  reason?: string;
  organizationId?: string;
}

/** Thrown when an event refers to a subscription of ours that we have not recorded yet. */
export class SubscriptionNotYetKnownError extends Error {
  constructor(readonly stripeSubscriptionId: string) {
    super(`subscription ${stripeSubscriptionId} is not recorded yet; retry later`);
    this.name = "SubscriptionNotYetKnownError";
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Our organization for a Stripe customer (by our metadata first, then by customer id). */
async function findOrganizationId(
  tx: Db,
  customerId: string | null,
  metadataOrganizationId: string | undefined,
): Promise<string | null> {
  const byMetadata =
    metadataOrganizationId && UUID.test(metadataOrganizationId) ? metadataOrganizationId : null;
  return store.findOrganizationIdForCustomer(tx, {
    organizationId: byMetadata,
    stripeCustomerId: customerId,
  });
}

/**
 * `customer.subscription.created` / `.updated` / `.deleted`: keeps the local subscription and the
 * organization's plan (from the price via Plan.stripePriceId) in step with Stripe. Older events
 * than the last applied one, and anything after a deletion, change nothing, except that a
 * past_due/unpaid status is a fact for the payment standing even when older (paymentStanding.ts).
 */
export async function handleSubscriptionEvent(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const subscription = event.data.object as Stripe.Subscription;
  const priceId = firstItem(subscription)?.price?.id;
  const planSlug = priceId ? await store.findPlanSlugByPrice(tx, { stripePriceId: priceId }) : null;
  if (!planSlug) {
    deps.logger.warn(
      { eventId: event.id, subscriptionId: subscription.id, priceId },
      "Stripe subscription with a price no plan has: ignored",
    );
    return { applied: false, reason: "unknown_price" };
  }
  const organizationId = await findOrganizationId(
    tx,
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
  const syncDeps = { db: tx, settings: deps.settings };
  const applied = await upsertSubscriptionFromStripe(syncDeps, {
    subscription,
    organizationId,
    planSlug,
    observedAt: new Date(event.created * 1000),
    deleted: event.type === "customer.subscription.deleted",
    now: deps.clock.now(),
  });
  if (!applied) return { applied: false, reason: "stale", organizationId };
  await syncOrganizationPlan(syncDeps, { organizationId, now: deps.clock.now() });
  return { applied: true, organizationId };
}

/** Finds the invoice's subscription or explains why the event is ignored / must be retried. */
async function subscriptionOfInvoice(
  tx: Db,
  invoice: Stripe.Invoice,
): Promise<{ stripeSubscriptionId: string } | { outcome: HandlerOutcome }> {
  const stripeSubscriptionId = invoiceSubscriptionId(invoice);
  if (!stripeSubscriptionId) return { outcome: { applied: false, reason: "not_a_subscription" } };
  if (await store.isSubscriptionRecorded(tx, { stripeSubscriptionId })) {
    return { stripeSubscriptionId };
  }
  // One of our customers: the subscription event is on its way; fail so Stripe retries.
  if (await findOrganizationId(tx, invoiceCustomerId(invoice), undefined)) {
    throw new SubscriptionNotYetKnownError(stripeSubscriptionId);
  }
  return { outcome: { applied: false, reason: "unknown_subscription" } };
}

/**
 * Records an invoice outcome as a payment standing fact of its subscription, or explains why
 * the event is ignored; throws when the subscription is not recorded yet (Stripe retries).
 */
async function recordInvoiceFact(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
  kind: "payment_failed" | "payment_succeeded",
): Promise<StandingChange | { outcome: HandlerOutcome }> {
  const found = await subscriptionOfInvoice(tx, event.data.object as Stripe.Invoice);
  if ("outcome" in found) return found;
  const change = await recordStandingFact(
    { db: tx, settings: deps.settings },
    {
      stripeSubscriptionId: found.stripeSubscriptionId,
      fact: { kind, at: new Date(event.created * 1000) },
      now: deps.clock.now(),
    },
  );
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
 * to MAX_RETRY_COUNT, the last naming the suspension date. A failure older than the latest
 * payment is stale: the customer has paid since. Arriving after the grace ended, it suspends.
 */
export async function handlePaymentFailed(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const change = await recordInvoiceFact(tx, event, deps, "payment_failed");
  if ("outcome" in change) return change.outcome;
  const { organizationId, next } = change;
  await store.setBillingEmail(tx, {
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
  if (attempt <= max && next.graceEndsAt) {
    const isFinal = attempt === max;
    await deps.settings.notices.enqueue(tx, [
      {
        organizationId,
        type: isFinal ? "billing.payment_failed.final" : "billing.payment_failed",
        payload: {
          subscriptionId: change.subscriptionId,
          failedAt: new Date(event.created * 1000).toISOString(),
          attempt,
          maxAttempts: max,
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
 * A payment older than the latest one changes nothing.
 */
export async function handlePaymentSucceeded(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const change = await recordInvoiceFact(tx, event, deps, "payment_succeeded");
  if ("outcome" in change) return change.outcome;
  const { organizationId, previous, next } = change;
  await store.setBillingEmail(tx, {
    organizationId,
    email: invoice.customer_email ?? null,
    observedAt: new Date(event.created * 1000),
  });
  if (!change.recorded) {
    if (change.changed) return { applied: true, organizationId };
    return { applied: false, reason: skipReason(previous.status, "not_payable"), organizationId };
  }
  if (previous.status === "suspended" && next.status !== "suspended") {
    await deps.settings.notices.enqueue(tx, [
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
 * For the hourly job: past_due (or unpaid) subscriptions whose grace period ended by `now` (no
 * payment came in between, or it would have cleared the grace) become suspended, with a notice,
 * in one transaction. Returns the suspended subscriptions' ids. Events arriving after the grace
 * ended suspend by themselves (paymentStanding.ts); this is the same rule as time passes.
 */
export async function suspendExpiredGracePeriods(
  deps: { db: PrismaClient; notices: Pick<Notices, "enqueue"> },
  input: { now: Date },
): Promise<string[]> {
  return transaction(deps.db, async (tx) => {
    const rows = await store.suspendExpiredGrace(tx, input);
    await deps.notices.enqueue(
      tx,
      rows.map((row) => suspensionNotice(row.id, row.organization_id, row.grace_ends_at)),
    );
    return rows.map((row) => row.id);
  });
}

/**
 * `checkout.session.completed`: links the organization (`client_reference_id`) to the customer
 * that paid and keeps the billing e-mail given on the page. The subscription itself is recorded
 * from its own `customer.subscription.*` events (their metadata names the organization), in
 * whatever order they come, so this handler needs nothing from them and they nothing from it.
 */
export async function handleCheckoutCompleted(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  if (session.mode !== "subscription") return { applied: false, reason: "not_a_subscription" };
  const customerId =
    typeof session.customer === "string" ? session.customer : (session.customer?.id ?? null);
  const organizationId = await findOrganizationId(
    tx,
    customerId,
    session.client_reference_id ?? session.metadata?.organizationId,
  );
  if (!organizationId) {
    deps.logger.warn(
      { eventId: event.id, sessionId: session.id },
      "Stripe checkout of an unknown organization: ignored",
    );
    return { applied: false, reason: "unknown_customer" };
  }
  if (customerId)
    await store.setCustomerIdOnce(tx, { organizationId, stripeCustomerId: customerId });
  await store.setBillingEmail(tx, {
    organizationId,
    email: session.customer_details?.email ?? null,
    observedAt: new Date(event.created * 1000),
  });
  return { applied: true, organizationId };
}

/** `customer.updated`: the billing e-mail, which notices are sent to besides the admins. */
export async function handleCustomerUpdated(tx: Db, event: Stripe.Event): Promise<HandlerOutcome> {
  const customer = event.data.object as Stripe.Customer;
  const organizationId = await findOrganizationId(
    tx,
    customer.id,
    customer.metadata?.organizationId,
  );
  if (!organizationId) return { applied: false, reason: "unknown_customer" };
  await store.setBillingEmail(tx, {
    organizationId,
    email: customer.email,
    observedAt: new Date(event.created * 1000),
  });
  return { applied: true, organizationId };
}

export type StripeEventHandler = (
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
) => Promise<HandlerOutcome>;

/** Event type -> handler, for registration in the webhook framework. */
export const stripeEventHandlers: Readonly<Record<string, StripeEventHandler>> = {
  "customer.subscription.created": handleSubscriptionEvent,
  "customer.subscription.updated": handleSubscriptionEvent,
  "customer.subscription.deleted": handleSubscriptionEvent,
  "invoice.payment_failed": handlePaymentFailed,
  "invoice.paid": handlePaymentSucceeded,
  "invoice.payment_succeeded": handlePaymentSucceeded,
  "checkout.session.completed": handleCheckoutCompleted,
  "customer.updated": handleCustomerUpdated,
};
