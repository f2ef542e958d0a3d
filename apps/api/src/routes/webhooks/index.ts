import type { IncomingHttpHeaders } from "node:http";
import { AppError, BadRequestError } from "@zigznote/shared";
import express, { Router, type RequestHandler } from "express";
import type { AppContext } from "../../context";
import { WebhookInProgressError } from "../../utils/webhookIdempotency";
import type { WebhookProcessor, WebhookProvider } from "../../webhooks";
import {
  createStripeVerifier,
  createSvixVerifier,
  webhookNotConfigured,
  type VerifiedDelivery,
} from "./verify";
import { WebhookAckSchema } from "./webhooks.schemas";

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
    throw new BadRequestError(
      `Webhook body has no "${TYPE_FIELD[provider]}"`,
      undefined,
      "INVALID_WEBHOOK_EVENT",
    );
  }
  return type;
}

/**
 * `POST /webhooks/{stripe,clerk,recall}`. Mounted before the JSON parser: these routes read the
 * raw bytes (the signature covers them exactly), bounded by WEBHOOK_BODY_LIMIT.
 */
export function createWebhooksRouter(ctx: AppContext, processor: WebhookProcessor): Router {
  const router = Router();
  const secrets: Record<WebhookProvider, string | undefined> = {
    stripe: ctx.config.STRIPE_WEBHOOK_SECRET,
    clerk: ctx.config.CLERK_WEBHOOK_SECRET,
    recall: ctx.config.RECALL_WEBHOOK_SECRET,
  };
  const rawBody = express.raw({ type: () => true, limit: ctx.config.WEBHOOK_BODY_LIMIT });

  for (const provider of Object.keys(secrets) as WebhookProvider[]) {
    const secret = secrets[provider];
    const verify: Verifier | undefined = secret
      ? provider === "stripe"
        ? createStripeVerifier(secret)
        : createSvixVerifier(secret)
      : undefined;

    const requireSecret: RequestHandler = (_req, _res, next) => {
      next(verify ? undefined : webhookNotConfigured(provider));
    };

    router.post(`/${provider}`, requireSecret, rawBody, async (req, res, next) => {
      const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      // Nothing is read from the body, and nothing stored, before its signature is checked.
      const { id, payload } = verify!(body, req.headers);
      const event = {
        provider,
        id,
        type: eventTypeOf(provider, payload),
        payload,
        receivedAt: ctx.clock.now(),
      };
      let outcome;
      try {
        outcome = await processor.process(event);
      } catch (error) {
        if (error instanceof WebhookInProgressError) throw error;
        const failure = new AppError(
          500,
          "WEBHOOK_HANDLER_FAILED",
          "The event could not be processed and was not recorded; redeliver it",
        );
        // Logged (with its cause) by the error handler like any 5xx.
        (failure as Error).cause = error;
        next(failure);
        return;
      }
      const ack = WebhookAckSchema.parse({
        received: true,
        ...(outcome === "duplicate" ? { duplicate: true } : {}),
        ...(outcome === "unhandled" ? { handled: false } : {}),
      });
      res.status(200).json(ack);
    });
  }
  return router;
}
