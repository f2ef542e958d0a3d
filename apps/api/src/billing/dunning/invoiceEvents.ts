import type { Db, PrismaClient, Subscription, SubscriptionStatus } from "@zigznote/database";
import type Stripe from "stripe";
import { afterCommit, transaction } from "../lib/afterCommit";
import type { Notices } from "../notifications";
import {
  SubscriptionNotYetKnownError,
  type HandlerOutcome,
  type StripeEventHandler,
} from "./eventOutcome";
import { recordStandingFact, suspensionNotice, type StandingChange } from "./paymentStanding";
import {
  applyCustomerDetails,
  handlePaymentMethodEvent,
  handleTaxIdEvent,
  handleTrialWillEnd,
} from "./customerEvents";
import * as customerStore from "./customerStore";
import type { BillingEventDeps } from "./settings";
import { PLAN_GRANTING_STATUSES } from "./statuses";
import {
  cancelDuplicateSubscription,
  customerIdOf,
  firstItem,
  idempotencyKey,
  invoiceCustomerId,
  invoiceSubscriptionId,
} from "./stripeProvider";
import * as store from "./store";
import { findOrganizationId } from "./stripeLookup";
import { syncOrganizationPlan, upsertSubscriptionFromStripe } from "./subscriptionSync";

/**
 * Stripe event handlers: pure functions over the caller's transaction (the webhook framework
 * claims the event and runs the handler in one transaction; a throw rolls both back and Stripe
 * retries). They never call Stripe inside it; the one call they cause (cancelling a duplicate
 * subscription) is registered to run after the commit. Each returns what it did, for logs and
 * tests.
 */

export { SubscriptionNotYetKnownError, type HandlerOutcome, type StripeEventHandler };

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
  const duplicate = await checkDuplicate(tx, event, deps, { organizationId, planSlug });
  if (duplicate) return duplicate;
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
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
  input: { organizationId: string; planSlug: string },
): Promise<HandlerOutcome | null> {
  const subscription = event.data.object as Stripe.Subscription;
  const { organizationId } = input;
  if (event.type === "customer.subscription.deleted" || !isPlanGranting(subscription.status)) {
    return null;
  }
  const known = await store.findSubscriptionByStripeId(tx, {
    stripeSubscriptionId: subscription.id,
  });
  if (known?.status === "canceled") {
    if (known.canceledAt && event.created * 1000 > known.canceledAt.getTime()) {
      const notice = await store.findNoticeOfCause(tx, {
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
  await store.lockOrganization(tx, { organizationId });
  const live = await store.findLiveSubscription(tx, { organizationId });
  if (!live || live.stripeSubscriptionId === subscription.id) return null;
  await refuseDuplicate(tx, event, deps, { ...input, kept: live });
  return { applied: true, reason: "duplicate_canceled", organizationId };
}

function duplicateNoticeKey(stripeSubscriptionId: string): string {
  return `duplicate-subscription:${stripeSubscriptionId}`;
}

async function refuseDuplicate(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
  input: { organizationId: string; planSlug: string; kept: Subscription },
): Promise<void> {
  const subscription = event.data.object as Stripe.Subscription;
  const { organizationId, planSlug, kept } = input;
  await upsertSubscriptionFromStripe(
    { db: tx, settings: deps.settings },
    {
      subscription: { ...subscription, canceled_at: event.created },
      organizationId,
      planSlug,
      observedAt: new Date(event.created * 1000),
      deleted: true,
      now: deps.clock.now(),
    },
  );
  await deps.settings.notices.enqueue(tx, [
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
  kind: "payment_failed" | "payment_succeeded" | "payment_action_required",
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
  // This invoice no longer waits for the customer's confirmation, whatever the standing says.
  const wasWaiting = await customerStore.resolveConfirmation(tx, {
    ...confirmationOf(invoice, organizationId, change.subscriptionId),
    resolution: "paid",
    resolvedAt: new Date(event.created * 1000),
  });
  if (!change.recorded) {
    if (change.changed || wasWaiting) return { applied: true, organizationId };
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

function confirmationOf(
  invoice: Stripe.Invoice,
  organizationId: string,
  subscriptionId: string | null,
): customerStore.ConfirmationWrite {
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
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const change = await recordInvoiceFact(tx, event, deps, "payment_action_required");
  if ("outcome" in change) return change.outcome;
  const { organizationId, previous, next } = change;
  const requiredAt = new Date(event.created * 1000);
  await store.setBillingEmail(tx, {
    organizationId,
    email: invoice.customer_email ?? null,
    observedAt: requiredAt,
  });
  if (previous.status === "canceled") return { applied: false, reason: "canceled", organizationId };
  const isWaiting = await customerStore.recordConfirmationRequired(tx, {
    ...confirmationOf(invoice, organizationId, change.subscriptionId),
    requiredAt,
  });
  if (!isWaiting) {
    return { applied: change.changed, reason: "invoice_already_settled", organizationId };
  }
  await deps.settings.notices.enqueue(tx, [
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
 * `invoice.voided`: nothing is owed on the invoice any more, so it no longer waits for a
 * confirmation. (The payment standing is not changed: Stripe's subscription events and payments
 * say what the subscription owes.)
 */
export async function handleInvoiceVoided(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const found = await subscriptionOfInvoice(tx, invoice);
  if ("outcome" in found) return found.outcome;
  const subscription = await store.findSubscriptionByStripeIdOrThrow(tx, found);
  const wasWaiting = await customerStore.resolveConfirmation(tx, {
    ...confirmationOf(invoice, subscription.organizationId, subscription.id),
    resolution: "voided",
    resolvedAt: new Date(event.created * 1000),
  });
  deps.logger.info(
    { eventId: event.id, invoiceId: invoice.id, wasWaiting },
    "invoice voided: no confirmation waits for it",
  );
  return { applied: wasWaiting, organizationId: subscription.organizationId };
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

/**
 * `customer.updated`: the billing e-mail (notices go there besides the admins), the address and
 * the default payment method, each ordered by the event's `created`.
 */
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
  await applyCustomerDetails(tx, event, organizationId);
  return { applied: true, organizationId };
}

/** Event type -> handler, for registration in the webhook framework. */
export const stripeEventHandlers: Readonly<Record<string, StripeEventHandler>> = {
  "customer.subscription.created": handleSubscriptionEvent,
  "customer.subscription.updated": handleSubscriptionEvent,
  "customer.subscription.deleted": handleSubscriptionEvent,
  "invoice.payment_failed": handlePaymentFailed,
  "invoice.paid": handlePaymentSucceeded,
  "invoice.payment_succeeded": handlePaymentSucceeded,
  "invoice.payment_action_required": handlePaymentActionRequired,
  "invoice.voided": handleInvoiceVoided,
  "checkout.session.completed": handleCheckoutCompleted,
  "customer.updated": handleCustomerUpdated,
  "customer.subscription.trial_will_end": handleTrialWillEnd,
  "payment_method.attached": handlePaymentMethodEvent,
  "payment_method.updated": handlePaymentMethodEvent,
  "payment_method.automatically_updated": handlePaymentMethodEvent,
  "payment_method.detached": handlePaymentMethodEvent,
  "customer.tax_id.created": handleTaxIdEvent,
  "customer.tax_id.updated": handleTaxIdEvent,
  "customer.tax_id.deleted": handleTaxIdEvent,
};
