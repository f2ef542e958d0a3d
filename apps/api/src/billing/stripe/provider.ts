import Stripe from "stripe";
import { BadGatewayError } from "@zigznote/shared";
import type { Config } from "../config";
import type { CheckoutOptions } from "./settings";

/**
 * The one place that talks to Stripe, through the official SDK. Every request carries an
 * idempotency key that the caller derives from its own operation (organization id, billing
 * lease id and step), so the SDK's network retries and a retry of the same local operation reuse
 * it and Stripe applies the request once. Never call these inside an open database transaction.
 */

export type StripeClient = Stripe;

export interface StripeSettings {
  secretKey: string;
  host?: string;
  port?: number;
  protocol?: "http" | "https";
  maxNetworkRetries: number;
  timeoutMs: number;
}

/** The Stripe settings of a deployment, or null when no secret key is configured. */
export function stripeSettingsFromConfig(config: Config): StripeSettings | null {
  if (!config.STRIPE_SECRET_KEY) return null;
  return {
    secretKey: config.STRIPE_SECRET_KEY,
    host: config.STRIPE_API_HOST,
    port: config.STRIPE_API_PORT,
    protocol: config.STRIPE_API_PROTOCOL,
    maxNetworkRetries: config.STRIPE_MAX_NETWORK_RETRIES,
    timeoutMs: config.STRIPE_TIMEOUT_MS,
  };
}

/** A Stripe SDK client reaching Stripe (or a local server speaking its API) as configured. */
export function createStripeClient(settings: StripeSettings): StripeClient {
  return new Stripe(settings.secretKey, {
    maxNetworkRetries: settings.maxNetworkRetries,
    timeout: settings.timeoutMs,
    ...(settings.host ? { host: settings.host } : {}),
    ...(settings.port ? { port: settings.port } : {}),
    ...(settings.protocol ? { protocol: settings.protocol } : {}),
    appInfo: { name: "zigznote-api" },
  });
}

/** An idempotency key from the parts naming one local operation step (at most 255 chars). */
export function idempotencyKey(...parts: string[]): string {
  return `zigznote:${parts.join(":")}`.slice(0, 255);
}

/** Stripe's error as a 502 with Stripe's type and code in the details (never the raw message). */
function toBadGateway(error: unknown, action: string): never {
  if (error instanceof Stripe.errors.StripeError) {
    throw new BadGatewayError(`Stripe could not ${action}`, {
      code: "STRIPE_ERROR",
      details: {
        stripeType: error.type,
        stripeCode: error.code ?? null,
        stripeStatus: error.statusCode ?? null,
      },
    });
  }
  throw error;
}

async function call<T>(action: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    return toBadGateway(error, action);
  }
}

export interface CreateCustomerInput {
  organizationId: string;
  name: string;
  email?: string | null;
}

export function createCustomer(
  stripe: StripeClient,
  input: CreateCustomerInput,
  key: string,
): Promise<Stripe.Customer> {
  return call("create the customer", () =>
    stripe.customers.create(
      {
        name: input.name,
        ...(input.email ? { email: input.email } : {}),
        metadata: { organizationId: input.organizationId },
      },
      { idempotencyKey: key },
    ),
  );
}

export interface CreateSubscriptionInput {
  customerId: string;
  priceId: string;
  organizationId: string;
  planSlug: string;
}

export function createSubscription(
  stripe: StripeClient,
  input: CreateSubscriptionInput,
  key: string,
): Promise<Stripe.Subscription> {
  return call("create the subscription", () =>
    stripe.subscriptions.create(
      {
        customer: input.customerId,
        items: [{ price: input.priceId, quantity: 1 }],
        metadata: { organizationId: input.organizationId, planSlug: input.planSlug },
      },
      { idempotencyKey: key },
    ),
  );
}

export function retrieveSubscription(
  stripe: StripeClient,
  subscriptionId: string,
  key: string,
): Promise<Stripe.Subscription> {
  return call("read the subscription", () =>
    stripe.subscriptions.retrieve(subscriptionId, {}, { idempotencyKey: key }),
  );
}

export interface ChangeSubscriptionPriceInput {
  subscriptionId: string;
  itemId: string;
  priceId: string;
  planSlug: string;
  /** Upgrades are prorated (charged now); downgrades are not (no credit mid-period). */
  prorate: boolean;
  cancelAtPeriodEnd: boolean;
}

export function changeSubscriptionPrice(
  stripe: StripeClient,
  input: ChangeSubscriptionPriceInput,
  key: string,
): Promise<Stripe.Subscription> {
  return call("change the subscription", () =>
    stripe.subscriptions.update(
      input.subscriptionId,
      {
        items: [{ id: input.itemId, price: input.priceId, quantity: 1 }],
        proration_behavior: input.prorate ? "create_prorations" : "none",
        cancel_at_period_end: input.cancelAtPeriodEnd,
        metadata: { planSlug: input.planSlug },
      },
      { idempotencyKey: key },
    ),
  );
}

export function setCancelAtPeriodEnd(
  stripe: StripeClient,
  subscriptionId: string,
  cancelAtPeriodEnd: boolean,
  key: string,
): Promise<Stripe.Subscription> {
  return call("schedule the cancellation", () =>
    stripe.subscriptions.update(
      subscriptionId,
      { cancel_at_period_end: cancelAtPeriodEnd },
      { idempotencyKey: key },
    ),
  );
}

export function cancelSubscriptionNow(
  stripe: StripeClient,
  subscriptionId: string,
  key: string,
): Promise<Stripe.Subscription> {
  return call("cancel the subscription", () =>
    stripe.subscriptions.cancel(subscriptionId, {}, { idempotencyKey: key }),
  );
}

/** The subscription's first item (we sell one price per subscription). */
export function firstItem(subscription: Stripe.Subscription): Stripe.SubscriptionItem | undefined {
  return subscription.items?.data?.[0];
}

/** The billing period, read from the item (where recent API versions keep it). */
export function subscriptionPeriod(subscription: Stripe.Subscription): {
  start: Date | null;
  end: Date | null;
} {
  const item = firstItem(subscription);
  return {
    start: item?.current_period_start ? new Date(item.current_period_start * 1000) : null,
    end: item?.current_period_end ? new Date(item.current_period_end * 1000) : null,
  };
}

export function customerIdOf(subscription: Stripe.Subscription): string {
  return typeof subscription.customer === "string"
    ? subscription.customer
    : subscription.customer.id;
}

/** The subscription an invoice belongs to (recent API versions: `parent.subscription_details`). */
export function invoiceSubscriptionId(invoice: Stripe.Invoice): string | null {
  const fromParent = invoice.parent?.subscription_details?.subscription;
  if (fromParent) return typeof fromParent === "string" ? fromParent : fromParent.id;
  // Older API versions put it on the invoice itself.
  const legacy = (invoice as unknown as { subscription?: string | { id: string } | null })
    .subscription;
  if (legacy) return typeof legacy === "string" ? legacy : legacy.id;
  return null;
}

export function invoiceCustomerId(invoice: Stripe.Invoice): string | null {
  if (!invoice.customer) return null;
  return typeof invoice.customer === "string" ? invoice.customer : invoice.customer.id;
}

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
  return call("create the checkout session", () =>
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
  return call("list the open checkout sessions", async () => {
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
    return call("read the checkout session", () => stripe.checkout.sessions.retrieve(sessionId));
  }
}

/**
 * Cancels a subscription we must not keep (a second one of an organization) now, crediting the
 * unused time: Stripe prorates the paid period and invoices the credit at once, which lands on
 * the customer's balance (and so pays the kept subscription's next invoice).
 */
export function cancelDuplicateSubscription(
  stripe: StripeClient,
  subscriptionId: string,
  key: string,
): Promise<Stripe.Subscription> {
  return call("cancel the duplicate subscription", () =>
    stripe.subscriptions.cancel(
      subscriptionId,
      { prorate: true, invoice_now: true },
      { idempotencyKey: key },
    ),
  );
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
  return call("open the billing portal", () =>
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

/**
 * One page of the customer's invoices, newest first (Stripe's list: `starting_after` the last
 * invoice of the previous page). A `starting_after` Stripe does not know is answered as null.
 */
export async function listCustomerInvoices(
  stripe: StripeClient,
  input: { customerId: string; limit: number; startingAfter: string | null },
): Promise<Stripe.ApiList<Stripe.Invoice> | null> {
  try {
    return await stripe.invoices.list({
      customer: input.customerId,
      limit: input.limit,
      ...(input.startingAfter ? { starting_after: input.startingAfter } : {}),
    });
  } catch (error) {
    if (
      input.startingAfter &&
      error instanceof Stripe.errors.StripeInvalidRequestError &&
      error.param === "starting_after"
    ) {
      return null;
    }
    return toBadGateway(error, "list the invoices");
  }
}

/** A charge (a dispute names only its charge; the charge names the customer). */
export function retrieveCharge(stripe: StripeClient, chargeId: string): Promise<Stripe.Charge> {
  return call("read the charge", () => stripe.charges.retrieve(chargeId));
}

export interface PreviewInvoiceInput {
  customerId: string | null;
  priceId: string;
  /** The live subscription and its item, when the change is to an existing subscription. */
  subscription: { id: string; itemId: string; prorate: boolean } | null;
}

/** Stripe's preview of the next invoice after the change (nothing is created at Stripe). */
export function previewInvoice(
  stripe: StripeClient,
  input: PreviewInvoiceInput,
): Promise<Stripe.Invoice> {
  const { subscription } = input;
  return call("preview the invoice", () =>
    stripe.invoices.createPreview(
      subscription
        ? {
            ...(input.customerId ? { customer: input.customerId } : {}),
            subscription: subscription.id,
            subscription_details: {
              items: [{ id: subscription.itemId, price: input.priceId, quantity: 1 }],
              proration_behavior: subscription.prorate ? "create_prorations" : "none",
            },
          }
        : {
            ...(input.customerId
              ? { customer: input.customerId }
              : { customer_details: { tax_exempt: "none" as const } }),
            subscription_details: { items: [{ price: input.priceId, quantity: 1 }] },
          },
    ),
  );
}
