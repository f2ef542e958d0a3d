import type { IncomingHttpHeaders } from "node:http";
import { isDatabaseUnavailable } from "@zigznote/database";
import { BadRequestError, httpError } from "@zigznote/shared";
import express, { type RequestHandler } from "express";
import { defineRoute, type RouteDefinition } from "../http/route";
import type { Clock } from "../lib/clock";
import { toStorableString, toStorableText } from "../lib/text";
import { WebhookInProgressError } from "./idempotency";
import type { WebhookProcessor } from "./processor";
import { WEBHOOK_PROVIDERS, type WebhookProvider } from "./registry";
import { WEBHOOK_SIGNATURES, WebhookAckSchema, WebhookBodySchema } from "./schemas";
import {
  createStripeVerifier,
  createSvixVerifier,
  webhookNotConfigured,
  type VerifiedDelivery,
} from "./verify";

type Verifier = (rawBody: Buffer, headers: IncomingHttpHeaders) => VerifiedDelivery;

/** Where each provider puts the event type in its (verified) body. */
const TYPE_FIELD: Record<WebhookProvider, string> = {
  stripe: "type",
  clerk: "type",
  recall: "event",
};

function eventTypeOf(provider: WebhookProvider, payload: unknown): string {
  const type =
    payload && typeof payload === "object"
      ? (payload as Record<string, unknown>)[TYPE_FIELD[provider]]
      : undefined;
  if (typeof type !== "string" || type === "") {
    throw new BadRequestError(`Webhook body has no "${TYPE_FIELD[provider]}"`, {
      code: "INVALID_WEBHOOK_EVENT",
    });
  }
  return type;
}

/** The environment variable holding each provider's signing secret (named in the 503). */
const SECRET_VARIABLE: Record<WebhookProvider, string> = {
  stripe: "STRIPE_WEBHOOK_SECRET",
  clerk: "CLERK_WEBHOOK_SECRET",
  recall: "RECALL_WEBHOOK_SECRET",
};

export interface WebhookRouteDeps {
  clock: Clock;
  processor: WebhookProcessor;
  /** Each provider's signing secret; unset answers 503 PROVIDER_NOT_CONFIGURED. */
  secrets: Record<WebhookProvider, string | undefined>;
  /** Largest body accepted (413 above). */
  bodyLimit: string;
}

/**
 * `POST /webhooks/{stripe,clerk,recall}`. Mounted before the JSON parser: these routes read the
 * raw bytes (the signature covers them exactly), bounded by WEBHOOK_BODY_LIMIT.
 */
export function webhookRoutes(deps: WebhookRouteDeps): RouteDefinition[] {
  const rawBody = express.raw({ type: () => true, limit: deps.bodyLimit });
  return WEBHOOK_PROVIDERS.map((provider) => {
    const secret = deps.secrets[provider];
    const verify: Verifier | undefined = secret
      ? provider === "stripe"
        ? createStripeVerifier(secret)
        : createSvixVerifier(secret)
      : undefined;
    const requireSecret: RequestHandler = (_req, _res, next) => {
      next(verify ? undefined : webhookNotConfigured(provider, SECRET_VARIABLE[provider]));
    };
    const { summary, headers } = WEBHOOK_SIGNATURES[provider];

    return defineRoute({
      method: "post",
      path: `/webhooks/${provider}`,
      operationId: `receive${provider[0]!.toUpperCase()}${provider.slice(1)}Webhook`,
      tag: "Webhooks",
      auth: "none",
      summary,
      description:
        `Signed by the provider: ${headers} The signature is checked on the raw body ` +
        "before anything else. Each event takes effect exactly once: a redelivery answers 200 " +
        "with `duplicate: true`; a delivery whose handling failed answers 500 " +
        "`WEBHOOK_HANDLER_FAILED` and records nothing, so the provider's retry is processed. " +
        "When the database stops answering, the delivery answers 503 `DATABASE_UNAVAILABLE`: " +
        "what it had sent may still reach the database and take effect, and the retry then " +
        "answers `duplicate: true`. A concurrent redelivery waits for the first one and answers " +
        "409 `WEBHOOK_IN_PROGRESS` (retry later) if that takes longer than the lock timeout.",
      rawBody: { required: true, content: { "application/json": { schema: WebhookBodySchema } } },
      before: [requireSecret, rawBody],
      responses: {
        200: {
          description: "Processed, already processed, or acknowledged without a handler",
          schema: WebhookAckSchema,
        },
      },
      errors: [
        "WEBHOOK_SIGNATURE_MISSING",
        "WEBHOOK_SIGNATURE_INVALID",
        "INVALID_JSON",
        "INVALID_WEBHOOK_EVENT",
        "BAD_REQUEST",
        "PAYLOAD_TOO_LARGE",
        "WEBHOOK_IN_PROGRESS",
        "WEBHOOK_HANDLER_FAILED",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler(_input, req) {
        const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        // Nothing is read from the body, and nothing stored, before its signature is checked.
        const verified = verify!(body, req.headers);
        // Signed by the provider: made storable rather than refused (see lib/text.ts).
        const id = toStorableString(verified.id);
        const payload = toStorableText(verified.payload);
        const event = {
          provider,
          id,
          type: eventTypeOf(provider, payload),
          payload,
          receivedAt: deps.clock.now(),
        };
        let outcome;
        try {
          outcome = await deps.processor.process(event);
        } catch (error) {
          // A database that stopped answering: 503 with Retry-After, and no claim that nothing
          // was recorded (a statement held in the network may still reach it and commit; the
          // retry then answers duplicate).
          if (error instanceof WebhookInProgressError || isDatabaseUnavailable(error)) throw error;
          // The handler failed and its transaction rolled back: logged (with its cause) by the
          // error handler like any 5xx.
          throw httpError(
            "WEBHOOK_HANDLER_FAILED",
            "The event could not be processed and was not recorded; redeliver it",
            { cause: error },
          );
        }
        const ack = WebhookAckSchema.parse({
          received: true,
          ...(outcome === "duplicate" ? { duplicate: true } : {}),
          ...(outcome === "unhandled" ? { handled: false } : {}),
        });
        return { status: 200, body: ack };
      },
    });
  });
}
