import type Stripe from "stripe";
import type { WebhookHandler, WebhookRegistry } from "../webhooks";
import { stripeDisputeHandlers, type PreparedStripeEventHandler } from "./disputes";
import type { BillingEventDeps } from "./settings";
import { stripeEventHandlers, type StripeEventHandler } from "./stripeEvents";

/**
 * Stripe's billing events on the webhook framework. The route has verified the signature
 * (STRIPE_WEBHOOK_SECRET) and the processor claims the event id in the transaction the handler
 * runs in, so each event takes effect once. Notices a handler queues in the outbox are sent after
 * that transaction commits (never when it rolls back). Dispute events first read their charge
 * from Stripe, outside the transaction (a prepared handler).
 */
function adapt(handle: StripeEventHandler, deps: BillingEventDeps): WebhookHandler<Stripe.Event> {
  return async (event, tx) => {
    await handle(tx, event.payload, deps);
  };
}

function adaptPrepared<T>(handler: PreparedStripeEventHandler<T>, deps: BillingEventDeps) {
  return {
    prepare: (event: { payload: Stripe.Event }) => handler.prepare(event.payload, deps),
    async handle(
      event: { payload: Stripe.Event },
      tx: Parameters<WebhookHandler>[1],
      _hooks: unknown,
      prepared: T,
    ) {
      await handler.handle(tx, event.payload, deps, prepared);
    },
  };
}

/** Registers every handler of `stripeEventHandlers` and of the dispute events. */
export function registerStripeHandlers(
  registry: WebhookRegistry,
  deps: BillingEventDeps,
): WebhookRegistry {
  for (const [type, handle] of Object.entries(stripeEventHandlers)) {
    registry.register("stripe", type, adapt(handle, deps));
  }
  for (const [type, handler] of Object.entries(stripeDisputeHandlers)) {
    registry.register("stripe", type, adaptPrepared(handler, deps));
  }
  return registry;
}
