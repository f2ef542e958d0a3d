import Stripe from "stripe";
import type { CheckoutOptions } from "../settings";
import { callStripe, toBadGateway, type StripeClient } from "./provider";

/**
 * Stripe's hosted pages: Checkout Sessions (the card and the subscription are taken there) and
 * Customer Portal sessions. Like every Stripe call, each request carries the caller's
 * idempotency key, and none is made inside an open database transaction.
 */

export interface CreateCheckoutSessionInput {
  customerId: string;
  priceId: string;
  organizationId: string;
  planSlug: string;
  successUrl: string;
  cancelUrl: string;
  /** When Stripe closes the session if unpaid (Stripe allows 30 minutes to 24 hours). */
  expiresAt: Date;
  options: CheckoutOptions;
}

/**
 * What the deployment's Checkout options add to a session: tax (the address it needs is asked
 * for and saved on the customer), tax ids (saved on the customer, which needs its name updated
 * too), promotion codes, and a trial that starts without a card and cancels the subscription
 * when it ends without one.
 */
export function checkoutOptionParams(options: CheckoutOptions): Omit<
  Stripe.Checkout.SessionCreateParams,
  "subscription_data"
> & {
  subscription_data: Stripe.Checkout.SessionCreateParams.SubscriptionData;
} {
  const isTaxed = options.automaticTax;
  return {
    ...(isTaxed
      ? { automatic_tax: { enabled: true }, billing_address_collection: "required" as const }
      : {}),
    ...(options.taxIdCollection ? { tax_id_collection: { enabled: true } } : {}),
    ...(isTaxed || options.taxIdCollection
      ? {
          customer_update: {
            ...(isTaxed ? { address: "auto" as const } : {}),
            ...(options.taxIdCollection ? { name: "auto" as const } : {}),
          },
        }
      : {}),
    ...(options.allowPromotionCodes ? { allow_promotion_codes: true } : {}),
    ...(options.trialDays > 0 ? { payment_method_collection: "if_required" as const } : {}),
    subscription_data:
      options.trialDays > 0
        ? {
            trial_period_days: options.trialDays,
            trial_settings: { end_behavior: { missing_payment_method: "cancel" as const } },
          }
        : {},
  };
}

/**
 * A Checkout Session in subscription mode for our customer: Stripe's hosted page takes the card
 * and creates the subscription, which reaches us as `customer.subscription.created` (its
 * metadata names the organization) after `checkout.session.completed`.
 */
export function createCheckoutSession(
  stripe: StripeClient,
  input: CreateCheckoutSessionInput,
  key: string,
): Promise<Stripe.Checkout.Session> {
  const metadata = { organizationId: input.organizationId, planSlug: input.planSlug };
  const { subscription_data: subscriptionOptions, ...options } = checkoutOptionParams(
    input.options,
  );
  return callStripe("create the checkout session", () =>
    stripe.checkout.sessions.create(
      {
        mode: "subscription",
        customer: input.customerId,
        client_reference_id: input.organizationId,
        line_items: [{ price: input.priceId, quantity: 1 }],
        metadata,
        subscription_data: { metadata, ...subscriptionOptions },
        success_url: input.successUrl,
        cancel_url: input.cancelUrl,
        expires_at: Math.floor(input.expiresAt.getTime() / 1000),
        ...options,
      },
      { idempotencyKey: key },
    ),
  );
}

/** Ids of the customer's Checkout Sessions that can still be paid (every page of the list). */
export async function listOpenCheckoutSessionIds(
  stripe: StripeClient,
  customerId: string,
): Promise<string[]> {
  return callStripe("list the open checkout sessions", async () => {
    const ids: string[] = [];
    for await (const session of stripe.checkout.sessions.list({
      customer: customerId,
      status: "open",
      limit: 100,
    })) {
      ids.push(session.id);
    }
    return ids;
  });
}

/**
 * Expires an open Checkout Session so it can no longer be paid. Answers the session as Stripe
 * has it afterwards: `expired`, or `complete` when it was paid before the expiry reached Stripe
 * (Stripe refuses to expire a session that is not open; we then read it back).
 */
export async function expireCheckoutSession(
  stripe: StripeClient,
  sessionId: string,
  key: string,
): Promise<Stripe.Checkout.Session> {
  try {
    return await stripe.checkout.sessions.expire(sessionId, {}, { idempotencyKey: key });
  } catch (error) {
    if (!(error instanceof Stripe.errors.StripeInvalidRequestError)) {
      return toBadGateway(error, "expire the checkout session");
    }
    return callStripe("read the checkout session", () =>
      stripe.checkout.sessions.retrieve(sessionId),
    );
  }
}

/** The portal pages a session can open at once (Stripe's `flow_data.type`). */
export const PORTAL_FLOWS = [
  "payment_method_update",
  "subscription_cancel",
  "subscription_update",
] as const;

export type PortalFlow = (typeof PORTAL_FLOWS)[number];

/**
 * A Customer Portal session (card, invoices, cancellation) returning to `returnUrl`; with a
 * `flow`, it opens that page directly (the subscription's for cancel and update) and goes back
 * to `returnUrl` once done.
 */
export function createPortalSession(
  stripe: StripeClient,
  input: {
    customerId: string;
    returnUrl: string;
    flow?: { type: PortalFlow; subscriptionId: string | null };
  },
  key: string,
): Promise<Stripe.BillingPortal.Session> {
  const { flow } = input;
  let flowData: Stripe.BillingPortal.SessionCreateParams.FlowData | undefined;
  if (flow) {
    const subscription = flow.subscriptionId ?? "";
    flowData = {
      type: flow.type,
      ...(flow.type === "subscription_cancel" ? { subscription_cancel: { subscription } } : {}),
      ...(flow.type === "subscription_update" ? { subscription_update: { subscription } } : {}),
      after_completion: { type: "redirect", redirect: { return_url: input.returnUrl } },
    };
  }
  return callStripe("open the billing portal", () =>
    stripe.billingPortal.sessions.create(
      {
        customer: input.customerId,
        return_url: input.returnUrl,
        ...(flowData ? { flow_data: flowData } : {}),
      },
      { idempotencyKey: key },
    ),
  );
}
