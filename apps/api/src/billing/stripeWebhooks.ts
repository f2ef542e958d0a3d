import type Stripe from "stripe";
import type { WebhookHandler, WebhookRegistry } from "../webhooks";
import type { BillingEventDeps } from "./settings";
import { stripeEventHandlers, type StripeEventHandler } from "./stripeEvents";

/**
 * Stripe's billing events on the webhook framework. The route has verified the signature
 * (STRIPE_WEBHOOK_SECRET) and the processor claims the event id in the transaction the handler
 * runs in, so each event takes effect once. Notices a handler queues in the outbox are sent after
 * that transaction commits (never when it rolls back).
 */
function adapt(handle: StripeEventHandler, deps: BillingEventDeps): WebhookHandler<Stripe.Event> {
  return async (event, tx) => {
    await handle(tx, event.payload, deps);
  };
}

/** Registers every handler of `stripeEventHandlers` (subscription and invoice events). */
export function registerStripeHandlers(
  registry: WebhookRegistry,
  deps: BillingEventDeps,
): WebhookRegistry {
  for (const [type, handle] of Object.entries(stripeEventHandlers)) {
    registry.register("stripe", type, adapt(handle, deps));
  }
  return registry;
}
