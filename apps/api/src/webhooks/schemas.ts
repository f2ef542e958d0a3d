import { z } from "../http/openapi";

/** What a provider gets back for an accepted delivery. */
export const WebhookAckSchema = z
  .object({
    received: z.literal(true),
    duplicate: z
      .boolean()
      .optional()
      .openapi({ description: "The event's effects were already applied by an earlier delivery" }),
    handled: z
      .boolean()
      .optional()
      .openapi({ description: "false: no handler for this event type (not recorded, no effect)" }),
  })
  .openapi("WebhookAck");

/** How each provider signs (documented on its route). */
export const WEBHOOK_SIGNATURES = {
  stripe: {
    summary: "Stripe events",
    headers: "`stripe-signature` (Stripe's scheme, 5 minute tolerance); the event id is `id`.",
  },
  clerk: {
    summary: "Clerk events (users, organizations, memberships)",
    headers:
      "Svix signature: `svix-id`/`svix-timestamp`/`svix-signature` or the Standard Webhooks " +
      "`webhook-id`/`webhook-timestamp`/`webhook-signature`; the event id is the message id.",
  },
  recall: {
    summary: "Recall.ai events (bots, recordings)",
    headers:
      "Svix signature: `svix-*` or Standard Webhooks `webhook-*` headers; the event id is the " +
      "message id.",
  },
} as const;

/** The verified body, as documented: any JSON object. */
export const WebhookBodySchema = z.record(z.string(), z.unknown());
