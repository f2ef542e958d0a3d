import type { Db } from "@zigznote/database";
import type Stripe from "stripe";
import {
  SubscriptionNotYetKnownError,
  type HandlerOutcome,
  type StripeEventDeps,
} from "../stripe/eventOutcome";
import { findOrganizationId, idOf } from "../stripe/lookup";
import { firstItem } from "../stripe/provider";
import * as subscriptionStore from "../subscriptions/store";
import * as customerStore from "./store";

/**
 * Stripe's events about the customer rather than its subscription: its billing e-mail, address
 * and default payment method (`customer.updated`), its payment methods (`payment_method.*`), its tax ids
 * (`customer.tax_id.*`), and the trial about to end. Each is ordered by Stripe's `created`
 * against the events of the same object (store.ts), so they apply in any arrival order.
 */

/** The first instant a card no longer works: the start of the month after its expiry, UTC. */
export function cardExpiresAt(expMonth: number, expYear: number): Date {
  return new Date(Date.UTC(expYear, expMonth, 1));
}

/** `customer.updated`: the address and the default payment method (the billing e-mail too). */
async function applyCustomerDetails(
  db: Db,
  event: Stripe.Event,
  organizationId: string,
): Promise<void> {
  const customer = event.data.object as Stripe.Customer;
  await customerStore.upsertBillingCustomer(db, {
    organizationId,
    address: isEmptyAddress(customer.address)
      ? null
      : (customer.address as unknown as Record<string, unknown>),
    defaultPaymentMethodId: idOf(customer.invoice_settings?.default_payment_method),
    observedAt: new Date(event.created * 1000),
  });
}

/** Stripe answers an address with every field null when none was given. */
function isEmptyAddress(address: Stripe.Address | null | undefined): boolean {
  return !address || Object.values(address).every((value) => value === null || value === "");
}

/**
 * `payment_method.attached` / `.updated` / `.automatically_updated` / `.detached`: the
 * customer's payment method as of this event (a card's brand, last 4 digits and expiry). A
 * detached method is gone for good; the card updater's renewal is remembered as such.
 */
export async function handlePaymentMethodEvent(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const method = event.data.object as Stripe.PaymentMethod;
  const isDetached = event.type === "payment_method.detached";
  // A detached method no longer names its customer: the previous attributes do.
  const previous = event.data.previous_attributes as { customer?: string | null } | undefined;
  const customerId = idOf(method.customer) ?? (isDetached ? (previous?.customer ?? null) : null);
  const organizationId = customerId
    ? await findOrganizationId(deps.db, customerId, undefined)
    : null;
  if (!organizationId) {
    deps.logger.warn(
      { eventId: event.id, paymentMethodId: method.id },
      "payment method of an unknown customer: ignored",
    );
    return { applied: false, reason: "unknown_customer" };
  }
  const card = method.card;
  const applied = await customerStore.upsertPaymentMethod(deps.db, {
    id: method.id,
    organizationId,
    type: method.type,
    brand: card?.display_brand ?? card?.brand ?? null,
    last4: card?.last4 ?? null,
    expMonth: card?.exp_month ?? null,
    expYear: card?.exp_year ?? null,
    expiresAt: card ? cardExpiresAt(card.exp_month, card.exp_year) : null,
    observedAt: new Date(event.created * 1000),
    isAutoUpdate: event.type === "payment_method.automatically_updated",
    isDetached,
  });
  return applied ? { applied: true, organizationId } : { applied: false, reason: "stale" };
}

/** `customer.tax_id.created` / `.updated` / `.deleted`: the customer's tax ids. */
export async function handleTaxIdEvent(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const taxId = event.data.object as Stripe.TaxId;
  const customerId = idOf(taxId.customer) ?? idOf(taxId.owner?.customer);
  const organizationId = customerId
    ? await findOrganizationId(deps.db, customerId, undefined)
    : null;
  if (!organizationId) {
    deps.logger.warn(
      { eventId: event.id, taxId: taxId.id },
      "tax id of an unknown customer: ignored",
    );
    return { applied: false, reason: "unknown_customer" };
  }
  const applied = await customerStore.upsertTaxId(deps.db, {
    id: taxId.id,
    organizationId,
    type: taxId.type,
    value: taxId.value,
    country: taxId.country,
    verificationStatus: taxId.verification?.status ?? null,
    observedAt: new Date(event.created * 1000),
    isDeleted: event.type === "customer.tax_id.deleted",
  });
  return applied ? { applied: true, organizationId } : { applied: false, reason: "stale" };
}

/**
 * `customer.subscription.trial_will_end` (three days before, by Stripe's default): one e-mail
 * naming the end date, what will be charged then (the plan's price before tax and discounts)
 * and to which card, or, without a card, that the subscription ends with the trial. One notice
 * per trial end: a redelivery queues nothing, a trial extended gets its own.
 */
export async function handleTrialWillEnd(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const subscription = event.data.object as Stripe.Subscription;
  const known = await subscriptionStore.findSubscriptionByStripeId(deps.db, {
    stripeSubscriptionId: subscription.id,
  });
  if (!known) {
    const organizationId = await findOrganizationId(
      deps.db,
      idOf(subscription.customer),
      subscription.metadata?.organizationId,
    );
    // Ours but not recorded yet: its created event is on its way, so Stripe should retry this.
    if (organizationId) throw new SubscriptionNotYetKnownError(subscription.id);
    return { applied: false, reason: "unknown_subscription" };
  }
  if (known.status === "canceled" || !subscription.trial_end) {
    return { applied: false, reason: "no_trial", organizationId: known.organizationId };
  }
  const price = firstItem(subscription)?.price;
  const quantity = firstItem(subscription)?.quantity ?? 1;
  const card = await customerStore.findDefaultPaymentMethod(deps.db, {
    organizationId: known.organizationId,
  });
  const trialEnd = new Date(subscription.trial_end * 1000).toISOString();
  await deps.settings.notices.enqueue(deps.db, [
    {
      organizationId: known.organizationId,
      type: "billing.trial_will_end",
      payload: {
        subscriptionId: known.id,
        planSlug: known.planSlug,
        trialEnd,
        amount: price?.unit_amount != null ? price.unit_amount * quantity : null,
        currency: price?.currency ?? null,
        card: card?.brand && card.last4 ? { brand: card.brand, last4: card.last4 } : null,
      },
      dedupeKey: `trial-ending:${subscription.id}:${trialEnd}`,
    },
  ]);
  return { applied: true, organizationId: known.organizationId };
}

/**
 * `customer.updated`: the billing e-mail (notices go there besides the admins), the address and
 * the default payment method, each ordered by the event's `created`.
 */
export async function handleCustomerUpdated(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const customer = event.data.object as Stripe.Customer;
  const organizationId = await findOrganizationId(
    deps.db,
    customer.id,
    customer.metadata?.organizationId,
  );
  if (!organizationId) return { applied: false, reason: "unknown_customer" };
  await customerStore.setBillingEmail(deps.db, {
    organizationId,
    email: customer.email,
    observedAt: new Date(event.created * 1000),
  });
  await applyCustomerDetails(deps.db, event, organizationId);
  return { applied: true, organizationId };
}

/**
 * `customer.deleted` (an operator deleted the customer in Stripe's dashboard, or through the
 * API): final, Stripe never reuses the id. The customer is unlinked from the organization, so
 * its next checkout or portal visit creates a new one instead of failing on "No such customer"
 * forever, and a late event of the deleted customer never links it again. Its address and
 * default card are forgotten. Stripe cancels its subscriptions with their own events.
 */
export async function handleCustomerDeleted(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const customer = event.data.object as Stripe.Customer;
  const organizationId = await findOrganizationId(
    deps.db,
    customer.id,
    customer.metadata?.organizationId,
  );
  if (!organizationId) {
    deps.logger.warn({ eventId: event.id, customerId: customer.id }, "deleted customer not ours");
    return { applied: false, reason: "unknown_customer" };
  }
  const deletedAt = new Date(event.created * 1000);
  const isUnlinked = await customerStore.recordDeletedCustomer(deps.db, {
    organizationId,
    stripeCustomerId: customer.id,
    deletedAt,
  });
  if (isUnlinked) {
    await customerStore.upsertBillingCustomer(deps.db, {
      organizationId,
      address: null,
      defaultPaymentMethodId: null,
      observedAt: deletedAt,
    });
  }
  deps.logger.warn(
    { eventId: event.id, organizationId, customerId: customer.id, isUnlinked },
    "Stripe customer deleted: the organization's next billing visit creates a new one",
  );
  return { applied: true, organizationId };
}
