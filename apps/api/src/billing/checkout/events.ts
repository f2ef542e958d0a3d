import type Stripe from "stripe";
import * as customerStore from "../customers/store";
import type { HandlerOutcome, StripeEventDeps } from "../stripe/eventOutcome";
import { findOrganizationId } from "../stripe/lookup";

/**
 * `checkout.session.completed`: links the organization (`client_reference_id`) to the customer
 * that paid and keeps the billing e-mail given on the page. The subscription itself is recorded
 * from its own `customer.subscription.*` events (their metadata names the organization), in
 * whatever order they come, so this handler needs nothing from them and they nothing from it.
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
