import { errorResponses, openApiRegistry, z } from "../../openapi/registry";

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
      .openapi({ description: "false: no handler for this event type (recorded, no effect)" }),
  })
  .openapi("WebhookAck");

const providers = [
  {
    name: "stripe",
    summary: "Stripe events",
    headers: "`stripe-signature` (Stripe's scheme, 5 minute tolerance); the event id is `id`.",
  },
  {
    name: "clerk",
    summary: "Clerk events (users, organizations, memberships)",
    headers:
      "Svix signature: `svix-id`/`svix-timestamp`/`svix-signature` or the Standard Webhooks " +
      "`webhook-id`/`webhook-timestamp`/`webhook-signature`; the event id is the message id.",
  },
  {
    name: "recall",
    summary: "Recall.ai events (bots, recordings)",
    headers:
      "Svix signature: `svix-*` or Standard Webhooks `webhook-*` headers; the event id is the " +
      "message id.",
  },
] as const;

for (const provider of providers) {
  openApiRegistry.registerPath({
    method: "post",
    path: `/webhooks/${provider.name}`,
    tags: ["webhooks"],
    summary: provider.summary,
    description:
      `Signed by the provider: ${provider.headers} The signature is checked on the raw body ` +
      "before anything else. Each event takes effect exactly once: a redelivery answers 200 " +
      "with `duplicate: true`; a failed delivery answers 5xx and records nothing, so the " +
      "provider's retry is processed. A concurrent redelivery waits for the first one and " +
      "answers 409 `WEBHOOK_IN_PROGRESS` (retry later) if that takes longer than the lock timeout.",
    request: {
      body: {
        required: true,
        content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
      },
    },
    responses: {
      200: {
        description: "Processed, already processed, or recorded without a handler",
        content: { "application/json": { schema: WebhookAckSchema } },
      },
      ...errorResponses(400, 401, 409, 413, 500, 503),
    },
  });
}
