import type { Db, PrismaClient } from "@zigznote/database";
import type Stripe from "stripe";
import { transaction } from "../lib/afterCommit";
import { DAY_MS } from "../lib/time";
import type { Notices } from "../notifications";
import type { BillingEventDeps } from "./settings";
import {
  customerIdOf,
  firstItem,
  invoiceCustomerId,
  invoiceSubscriptionId,
} from "./stripeProvider";
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
  const rows = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations
     WHERE (id = ${byMetadata}::uuid OR stripe_customer_id = ${customerId})
     ORDER BY (id = ${byMetadata}::uuid) DESC NULLS LAST
     LIMIT 1`;
  return rows[0]?.id ?? null;
}

/**
 * `customer.subscription.created` / `.updated` / `.deleted`: keeps the local subscription and the
 * organization's plan (from the price via Plan.stripePriceId) in step with Stripe. Older events
 * than the last applied one, and anything after a deletion, change nothing.
 */
export async function handleSubscriptionEvent(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const subscription = event.data.object as Stripe.Subscription;
  const priceId = firstItem(subscription)?.price?.id;
  const plan = priceId
    ? await tx.plan.findUnique({ where: { stripePriceId: priceId }, select: { slug: true } })
    : null;
  if (!plan) {
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
  const applied = await upsertSubscriptionFromStripe(tx, subscription, {
    organizationId,
    planSlug: plan.slug,
    observedAt: new Date(event.created * 1000),
    deleted: event.type === "customer.subscription.deleted",
  });
  if (!applied) return { applied: false, reason: "stale", organizationId };
  await syncOrganizationPlan(tx, organizationId, deps.clock.now(), deps.settings);
  return { applied: true, organizationId };
}

/** Finds the invoice's subscription or explains why the event is ignored / must be retried. */
async function subscriptionOfInvoice(
  tx: Db,
  invoice: Stripe.Invoice,
): Promise<{ stripeSubscriptionId: string } | { outcome: HandlerOutcome }> {
  const stripeSubscriptionId = invoiceSubscriptionId(invoice);
  if (!stripeSubscriptionId) return { outcome: { applied: false, reason: "not_a_subscription" } };
  const known = await tx.subscription.findUnique({
    where: { stripeSubscriptionId },
    select: { id: true },
  });
  if (known) return { stripeSubscriptionId };
  // One of our customers: the subscription event is on its way; fail so Stripe retries.
  if (await findOrganizationId(tx, invoiceCustomerId(invoice), undefined)) {
    throw new SubscriptionNotYetKnownError(stripeSubscriptionId);
  }
  return { outcome: { applied: false, reason: "unknown_subscription" } };
}

/** Why a payment event changed nothing: an out-of-order (stale) delivery, or `otherwise`. */
async function whyPaymentEventSkipped(
  tx: Db,
  stripeSubscriptionId: string,
  otherwise: string,
): Promise<string> {
  const rows = await tx.$queryRaw<{ status: string }[]>`
    SELECT status::text FROM subscriptions WHERE stripe_subscription_id = ${stripeSubscriptionId}`;
  const status = rows[0]?.status;
  return status === "canceled" ||
    (otherwise === "not_payable" &&
      !["active", "past_due", "suspended", "unpaid", "incomplete"].includes(status ?? ""))
    ? otherwise
    : "stale_payment_event";
}

/**
 * `invoice.payment_failed`: past_due, `paymentFailedAt`, the retry count incremented in SQL (so
 * concurrent failures lose nothing), the grace period started on the first failure, and one
 * dunning notice per failure up to MAX_RETRY_COUNT, the last naming the suspension date.
 */
export async function handlePaymentFailed(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const found = await subscriptionOfInvoice(tx, invoice);
  if ("outcome" in found) return found.outcome;
  const now = deps.clock.now();
  const created = new Date(event.created * 1000);
  const graceEndsAt = new Date(now.getTime() + deps.settings.gracePeriodDays * DAY_MS);
  // A failure older than the latest applied payment is stale: the customer has paid since.
  const rows = await tx.$queryRaw<
    { organization_id: string; payment_retry_count: number; grace_ends_at: Date }[]
  >`
    UPDATE subscriptions
       SET status = CASE WHEN status = 'suspended' THEN status
                         ELSE 'past_due'::"SubscriptionStatus" END,
           payment_failed_at = ${now},
           payment_retry_count = payment_retry_count + 1,
           grace_ends_at = COALESCE(grace_ends_at, ${graceEndsAt}),
           last_payment_failed_event_at = GREATEST(last_payment_failed_event_at, ${created}),
           updated_at = now()
     WHERE stripe_subscription_id = ${found.stripeSubscriptionId} AND status <> 'canceled'
       AND (last_payment_succeeded_event_at IS NULL OR last_payment_succeeded_event_at <= ${created})
    RETURNING organization_id, payment_retry_count, grace_ends_at`;
  const row = rows[0];
  if (!row)
    return {
      applied: false,
      reason: await whyPaymentEventSkipped(tx, found.stripeSubscriptionId, "canceled"),
    };
  const attempt = row.payment_retry_count;
  const max = deps.settings.maxRetryCount;
  if (attempt <= max) {
    const isFinal = attempt === max;
    await deps.settings.notices.enqueue(tx, [
      {
        organizationId: row.organization_id,
        type: isFinal ? "billing.payment_failed.final" : "billing.payment_failed",
        payload: {
          attempt,
          maxAttempts: max,
          invoiceId: invoice.id,
          amountDue: invoice.amount_due,
          currency: invoice.currency,
          hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
          graceEndsAt: row.grace_ends_at.toISOString(),
          ...(isFinal ? { suspendsAt: row.grace_ends_at.toISOString() } : {}),
        },
        dedupeKey: `dunning:${event.id}`,
      },
    ]);
  }
  return { applied: true, organizationId: row.organization_id };
}

/**
 * `invoice.paid` / `invoice.payment_succeeded`: back to active with the grace fields cleared,
 * from past_due or from suspended (Stripe may still collect after our grace ended).
 */
export async function handlePaymentSucceeded(
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
): Promise<HandlerOutcome> {
  const invoice = event.data.object as Stripe.Invoice;
  const found = await subscriptionOfInvoice(tx, invoice);
  if ("outcome" in found) return found.outcome;
  const created = new Date(event.created * 1000);
  const rows = await tx.$queryRaw<{ organization_id: string; previous: string }[]>`
    WITH previous AS (
      SELECT id, status FROM subscriptions
       WHERE stripe_subscription_id = ${found.stripeSubscriptionId} FOR UPDATE)
    UPDATE subscriptions s
       SET status = 'active', grace_ends_at = NULL, payment_failed_at = NULL,
           payment_retry_count = 0,
           last_payment_succeeded_event_at = GREATEST(s.last_payment_succeeded_event_at, ${created}),
           updated_at = now()
      FROM previous
     WHERE s.id = previous.id
       AND previous.status IN ('active', 'past_due', 'suspended', 'unpaid', 'incomplete')
       -- A payment older than the latest applied failure is stale: that failure came after it.
       AND (s.last_payment_failed_event_at IS NULL OR s.last_payment_failed_event_at <= ${created})
    RETURNING s.organization_id, previous.status::text AS previous`;
  const row = rows[0];
  if (!row) {
    return {
      applied: false,
      reason: await whyPaymentEventSkipped(tx, found.stripeSubscriptionId, "not_payable"),
    };
  }
  if (row.previous === "suspended") {
    await deps.settings.notices.enqueue(tx, [
      {
        organizationId: row.organization_id,
        type: "billing.access_restored",
        payload: { invoiceId: invoice.id },
        dedupeKey: `restored:${event.id}`,
      },
    ]);
  }
  return { applied: true, organizationId: row.organization_id };
}

/**
 * For the hourly job: past_due subscriptions whose grace period ended by `now` (no payment came
 * in between, or it would have cleared the grace) become suspended, with a notice, in one
 * transaction. Returns the suspended subscriptions' ids.
 */
export async function suspendExpiredGracePeriods(
  db: PrismaClient,
  now: Date,
  notices: Pick<Notices, "enqueue">,
): Promise<string[]> {
  return transaction(db, async (tx) => {
    const rows = await tx.$queryRaw<{ id: string; organization_id: string; grace_ends_at: Date }[]>`
      UPDATE subscriptions SET status = 'suspended', updated_at = now()
       WHERE status = 'past_due' AND grace_ends_at <= ${now}
      RETURNING id, organization_id, grace_ends_at`;
    await notices.enqueue(
      tx,
      rows.map((row) => ({
        organizationId: row.organization_id,
        type: "billing.suspended",
        payload: { subscriptionId: row.id, graceEndedAt: row.grace_ends_at.toISOString() },
        dedupeKey: `suspended:${row.id}:${row.grace_ends_at.toISOString()}`,
      })),
    );
    return rows.map((row) => row.id);
  });
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
};
