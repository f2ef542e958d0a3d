import type Stripe from "stripe";
import * as customerStore from "../customers/store";
import type { HandlerOutcome, StripeEventDeps } from "../stripe/eventOutcome";
import { findOrganizationId, idOf } from "../stripe/lookup";
import {
  deletedOrganizationOutcome,
  stopSubscriptionOfDeletedOrganization,
} from "../subscriptions/organizationDeletion";
import * as subscriptionStore from "../subscriptions/store";

/**
 * `checkout.session.completed`: links the organization (`client_reference_id`) to the customer
 * that paid and keeps the billing e-mail given on the page. The subscription itself is recorded
 * from its own `customer.subscription.*` events (their metadata names the organization), in
 * whatever order they come, so this handler needs nothing from them and they nothing from it.
 * A checkout completed for a deleted organization (paid before the expiry of its session reached
 * Stripe) records nothing: its subscription's cancellation and refund are queued.
 */
export async function handleCheckoutCompleted(
  deps: StripeEventDeps,
  event: Stripe.Event,
): Promise<HandlerOutcome> {
  const session = event.data.object as Stripe.Checkout.Session;
  if (session.mode !== "subscription") return { applied: false, reason: "not_a_subscription" };
  const customerId =
    typeof session.customer === "string" ? session.customer : (session.customer?.id ?? null);
  const organizationId = await findOrganizationId(
    deps.db,
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
  if (!(await subscriptionStore.isLiveOrganization(deps.db, { organizationId }))) {
    const stripeSubscriptionId = idOf(session.subscription);
    if (!stripeSubscriptionId) return { applied: false, reason: "organization_deleted" };
    const stopped = await stopSubscriptionOfDeletedOrganization(deps, {
      eventId: event.id,
      organizationId,
      stripeSubscriptionId,
    });
    // One the organization had at its deletion is canceled already, and not refunded.
    if (stopped === "had_at_deletion") return { applied: false, reason: "organization_deleted" };
    return deletedOrganizationOutcome(stopped, organizationId);
  }
  if (customerId)
    await customerStore.setCustomerIdOnce(deps.db, {
      organizationId,
      stripeCustomerId: customerId,
    });
  await customerStore.setBillingEmail(deps.db, {
    organizationId,
    email: session.customer_details?.email ?? null,
    observedAt: new Date(event.created * 1000),
  });
  return { applied: true, organizationId };
}
