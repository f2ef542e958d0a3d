import type Stripe from "stripe";
import { stripeEventHandlers, type StripeEventHandler } from "../billing/stripeEvents";
import type { WebhookHandler, WebhookRegistry } from "./registry";

/**
 * Stripe's billing events on the webhook framework. The route has verified the signature
 * (STRIPE_WEBHOOK_SECRET) and the processor claims the event id in the transaction the handler
 * runs in, so each event takes effect once. Notices a handler queues in the outbox are sent after
 * that transaction commits (never when it rolls back).
 */
function adapt(handle: StripeEventHandler): WebhookHandler<Stripe.Event> {
  return async (event, tx, hooks) => {
    const { billing } = hooks.ctx;
    const outcome = await handle(tx, event.payload, billing.eventDeps);
    if (outcome.applied) hooks.afterCommit(() => billing.deliverNotifications());
  };
}

/** Registers every handler of `stripeEventHandlers` (subscription and invoice events). */
export function registerStripeHandlers(registry: WebhookRegistry): WebhookRegistry {
  for (const [type, handle] of Object.entries(stripeEventHandlers)) {
    registry.register("stripe", type, adapt(handle));
  }
  return registry;
}
