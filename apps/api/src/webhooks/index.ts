/**
 * Webhooks: the exactly-once framework (claim and effect in one transaction), the signed
 * routes, and the registry that features register their handlers in.
 */
export {
  checkAndMarkProcessed,
  cleanupOldWebhooks,
  isProcessed,
  processWebhookOnce,
  processWebhookStatementOnce,
  WebhookInProgressError,
  type WebhookClaim,
} from "./idempotency";
export {
  createWebhookProcessor,
  type WebhookOutcome,
  type WebhookProcessor,
  type WebhookProcessorDeps,
} from "./processor";
export {
  WEBHOOK_PROVIDERS,
  WebhookRegistry,
  isPreparedHandler,
  isStatementHandler,
  type AnyWebhookHandler,
  type PreparedHandler,
  type StatementHandler,
  type WebhookEvent,
  type WebhookHandler,
  type WebhookHandlerHooks,
  type WebhookProvider,
} from "./registry";
export { webhookRoutes, type WebhookRouteDeps } from "./routes";
export {
  createWebhooksModule,
  type RegisterWebhookHandlers,
  type WebhooksModule,
  type WebhooksModuleDeps,
} from "./module";
