export {
  checkAndMarkProcessed,
  cleanupOldWebhooks,
  isLockTimeout,
  isProcessed,
  processWebhookOnce,
  WebhookInProgressError,
  type ProcessWebhookOnceOptions,
  type ProcessWebhookOnceResult,
  type WebhookClaim,
} from "./webhookIdempotency";
