import { registerClerkHandlers } from "./clerk";
import { registerRecallHandlers } from "./recall";
import { WebhookRegistry } from "./registry";
import { registerStripeHandlers } from "./stripe";

export { createWebhookProcessor, type WebhookOutcome, type WebhookProcessor } from "./processor";
export {
  WEBHOOK_PROVIDERS,
  WebhookRegistry,
  isStatementHandler,
  type AnyWebhookHandler,
  type StatementHandler,
  type WebhookEvent,
  type WebhookHandler,
  type WebhookHandlerHooks,
  type WebhookProvider,
} from "./registry";

/**
 * The handlers every app starts with: Clerk identity events and Stripe billing events. Later
 * providers' handlers (Recall bot events) are registered here too; the routes never change.
 */
export function createDefaultWebhookRegistry(): WebhookRegistry {
  const registry = new WebhookRegistry();
  registerClerkHandlers(registry);
  registerStripeHandlers(registry);
  registerRecallHandlers(registry);
  return registry;
}
