/** Webhook providers the API accepts events from (each has a signed route `/webhooks/<provider>`). */
export const WEBHOOK_PROVIDERS = ["stripe", "clerk", "recall"] as const;
export type WebhookProvider = (typeof WEBHOOK_PROVIDERS)[number];

/** A page of results with an opaque cursor for the next page (null on the last page). */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
