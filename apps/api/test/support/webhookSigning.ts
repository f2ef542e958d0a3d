import { randomBytes } from "node:crypto";
import Stripe from "stripe";
import { Webhook } from "svix";

/** A Svix-style signing secret owned by the test (`whsec_` + base64 key). */
export function newSvixSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

export function newStripeSecret(): string {
  return `whsec_${randomBytes(16).toString("hex")}`;
}

export interface SvixSignOptions {
  timestamp?: Date;
  /** "svix" (svix-*, what Clerk sends) or "standard" (Standard Webhooks webhook-* headers). */
  style?: "svix" | "standard";
}

/** Headers a Svix sender puts on `body`, signed with the real `svix` library. */
export function svixHeaders(
  secret: string,
  msgId: string,
  body: string,
  options: SvixSignOptions = {},
): Record<string, string> {
  const timestamp = options.timestamp ?? new Date();
  const signature = new Webhook(secret).sign(msgId, timestamp, body);
  const prefix = options.style === "standard" ? "webhook" : "svix";
  return {
    "content-type": "application/json",
    [`${prefix}-id`]: msgId,
    [`${prefix}-timestamp`]: String(Math.floor(timestamp.getTime() / 1000)),
    [`${prefix}-signature`]: signature,
  };
}

/** The `stripe-signature` header Stripe would send, from the SDK's own test helper. */
export function stripeHeaders(
  secret: string,
  body: string,
  timestamp?: number,
): Record<string, string> {
  return {
    "content-type": "application/json",
    "stripe-signature": Stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret,
      ...(timestamp === undefined ? {} : { timestamp }),
    }),
  };
}
