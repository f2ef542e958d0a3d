import type Stripe from "stripe";
import type { WebhookRegistry } from "../../webhooks";
import { handleCheckoutCompleted } from "../checkout/events";
import {
  handleCustomerDeleted,
  handleCustomerUpdated,
  handlePaymentMethodEvent,
  handleTaxIdEvent,
  handleTrialWillEnd,
} from "../customers/events";
import { stripeDisputeHandlers } from "../disputes/disputes";
import {
  handleInvoiceVoided,
  handlePaymentActionRequired,
  handlePaymentFailed,
  handlePaymentSucceeded,
} from "../dunning/invoiceEvents";
import type { BillingEventDeps } from "../settings";
import { handleSubscriptionEvent } from "../subscriptions/events";
import type { StripeEventHandler } from "./eventOutcome";

/**
 * Stripe's billing events on the webhook framework. The route has verified the signature
 * (STRIPE_WEBHOOK_SECRET) and the processor claims the event id in the transaction the handler
 * runs in, so each event takes effect once. Notices a handler queues in the outbox are sent after
 * that transaction commits (never when it rolls back). Dispute events first read their charge
 * from Stripe, outside the transaction (a prepared handler). Each handler lives with the part of
 * billing its event is about; this file only lists them.
 */

/** Event type -> handler (the transactional ones). */
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
  "customer.deleted": handleCustomerDeleted,
  "customer.subscription.trial_will_end": handleTrialWillEnd,
  "payment_method.attached": handlePaymentMethodEvent,
  "payment_method.updated": handlePaymentMethodEvent,
  "payment_method.automatically_updated": handlePaymentMethodEvent,
  "payment_method.detached": handlePaymentMethodEvent,
  "customer.tax_id.created": handleTaxIdEvent,
  "customer.tax_id.updated": handleTaxIdEvent,
  "customer.tax_id.deleted": handleTaxIdEvent,
};

/**
 * Registers every handler of `stripeEventHandlers` and of the dispute events with `deps`: the
 * framework hands each its verified event and the claim's transaction, which becomes the
 * handler's `deps.db`.
 */
export function registerStripeHandlers(
  registry: WebhookRegistry,
  deps: BillingEventDeps,
): WebhookRegistry {
  for (const [type, handle] of Object.entries(stripeEventHandlers)) {
    registry.register<Stripe.Event>("stripe", type, async (event, tx) => {
      await handle({ ...deps, db: tx }, event.payload);
    });
  }
  for (const [type, handler] of Object.entries(stripeDisputeHandlers)) {
    registry.register<Stripe.Event, Awaited<ReturnType<typeof handler.prepare>>>("stripe", type, {
      prepare: (event) => handler.prepare(deps, event.payload),
      async handle(event, tx, _hooks, prepared) {
        await handler.handle({ ...deps, db: tx }, event.payload, prepared);
      },
    });
  }
  return registry;
}
