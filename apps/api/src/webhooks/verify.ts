import type { IncomingHttpHeaders } from "node:http";
import { BadRequestError, ProviderNotConfiguredError, UnauthorizedError } from "@zigznote/shared";
import Stripe from "stripe";
import { Webhook, WebhookVerificationError } from "svix";

/** A signature-checked delivery: the provider's event id and the parsed body. */
export interface VerifiedDelivery {
  id: string;
  payload: unknown;
}

/** The body's signature is absent or incomplete. */
export function signatureMissing(what: string): BadRequestError {
  return new BadRequestError(`Missing webhook signature headers: ${what}`, {
    code: "WEBHOOK_SIGNATURE_MISSING",
  });
}

/** The body does not match its signature, or the signature is outside the time tolerance. */
export function signatureInvalid(reason: string): UnauthorizedError {
  return new UnauthorizedError(`Invalid webhook signature: ${reason}`, {
    code: "WEBHOOK_SIGNATURE_INVALID",
  });
}

function invalidJson(): BadRequestError {
  return new BadRequestError("Webhook body is not valid JSON", { code: "INVALID_JSON" });
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === "" ? undefined : first;
}

/**
 * Verifies a Svix-signed delivery (Clerk, Recall) with the `svix` library. Both header sets are
 * accepted: `svix-id/-timestamp/-signature` and Standard Webhooks `webhook-*`. The message id is
 * the event id: Svix keeps it across retries of one message.
 */
export function createSvixVerifier(
  secret: string,
): (rawBody: Buffer, headers: IncomingHttpHeaders) => VerifiedDelivery {
  const webhook = new Webhook(secret);
  return (rawBody, headers) => {
    const id = header(headers, "svix-id") ?? header(headers, "webhook-id");
    const timestamp = header(headers, "svix-timestamp") ?? header(headers, "webhook-timestamp");
    const signature = header(headers, "svix-signature") ?? header(headers, "webhook-signature");
    if (!id || !timestamp || !signature) {
      throw signatureMissing("svix-id, svix-timestamp and svix-signature (or webhook-*)");
    }
    try {
      const payload: unknown = webhook.verify(rawBody, {
        "svix-id": id,
        "svix-timestamp": timestamp,
        "svix-signature": signature,
      });
      return { id, payload };
    } catch (error) {
      // verify() parses the body only once the signature matched.
      if (error instanceof SyntaxError) throw invalidJson();
      if (error instanceof WebhookVerificationError) throw signatureInvalid(error.message);
      throw error;
    }
  };
}

/**
 * Verifies a Stripe delivery with the official SDK (`constructEvent`, default 300 s tolerance).
 * The event id is the event's own `id`.
 */
export function createStripeVerifier(
  secret: string,
): (rawBody: Buffer, headers: IncomingHttpHeaders) => VerifiedDelivery {
  return (rawBody, headers) => {
    const signature = header(headers, "stripe-signature");
    if (!signature) throw signatureMissing("stripe-signature");
    let event: Stripe.Event;
    try {
      event = Stripe.webhooks.constructEvent(rawBody, signature, secret);
    } catch (error) {
      if (error instanceof SyntaxError) throw invalidJson();
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) {
        throw signatureInvalid(error.message.split("\n")[0] ?? "signature mismatch");
      }
      throw error;
    }
    // Signed, but not an event (JSON null, an array, an object without an id): a clear 400.
    const id: unknown = event && typeof event === "object" ? event.id : undefined;
    if (typeof id !== "string" || id === "") {
      throw new BadRequestError('Webhook body is not a Stripe event (no "id")', {
        code: "INVALID_WEBHOOK_EVENT",
      });
    }
    return { id, payload: event };
  };
}

/**
 * A provider whose signing secret (`variable`) is not configured: nothing can be verified,
 * nothing stored.
 */
export function webhookNotConfigured(
  provider: string,
  variable: string,
): ProviderNotConfiguredError {
  return new ProviderNotConfiguredError(
    `Webhooks from ${provider} are not configured on this server`,
    { provider, variables: [variable] },
  );
}
