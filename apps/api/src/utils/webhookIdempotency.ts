/** The exactly-once webhook primitives under their original entry point (see `webhooks/`). */
export {
  checkAndMarkProcessed,
  cleanupOldWebhooks,
  isProcessed,
  processWebhookOnce,
  processWebhookStatementOnce,
  WebhookInProgressError,
  type WebhookClaim,
} from "../webhooks";
