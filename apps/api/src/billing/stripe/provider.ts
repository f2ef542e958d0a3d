import Stripe from "stripe";
import { BadGatewayError, ProviderNotConfiguredError } from "@zigznote/shared";
import type { Config } from "../../config";

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

/** The Stripe client; checked before anything else, so an unconfigured change writes nothing. */
export function requireStripe(deps: { stripe?: StripeClient | null }): StripeClient {
  if (!deps.stripe) {
    throw new ProviderNotConfiguredError("Billing is not configured on this server", {
      provider: "stripe",
      variables: ["STRIPE_SECRET_KEY"],
    });
  }
  return deps.stripe;
}

/** An idempotency key from the parts naming one local operation step (at most 255 chars). */
export function idempotencyKey(...parts: string[]): string {
  return `zigznote:${parts.join(":")}`.slice(0, 255);
}

/** Stripe's error as a 502 with Stripe's type and code in the details (never the raw message). */
export function toBadGateway(error: unknown, action: string): never {
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

/** Runs one SDK request; Stripe's errors become 502 (`toBadGateway`). */
export async function callStripe<T>(action: string, request: () => Promise<T>): Promise<T> {
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
  return callStripe("create the customer", () =>
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
  return callStripe("create the subscription", () =>
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
  return callStripe("read the subscription", () =>
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
  return callStripe("change the subscription", () =>
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
  return callStripe("schedule the cancellation", () =>
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
  return callStripe("cancel the subscription", () =>
    stripe.subscriptions.cancel(subscriptionId, {}, { idempotencyKey: key }),
  );
}

/** The subscription's first item (we sell one price per subscription). */
export function firstItem(subscription: Stripe.Subscription): Stripe.SubscriptionItem | undefined {
  return subscription.items?.data?.[0];
}

/**
 * The billing period, read from the item (where API versions since 2025-03-31 keep it), else
 * from the subscription itself, where older versions put it: a webhook endpoint pinned to an
 * older API version renders its events that way, whatever version the SDK speaks.
 */
export function subscriptionPeriod(subscription: Stripe.Subscription): {
  start: Date | null;
  end: Date | null;
} {
  const item = firstItem(subscription);
  const legacy = subscription as unknown as {
    current_period_start?: number | null;
    current_period_end?: number | null;
  };
  const start = item?.current_period_start ?? legacy.current_period_start;
  const end = item?.current_period_end ?? legacy.current_period_end;
  return {
    start: start ? new Date(start * 1000) : null,
    end: end ? new Date(end * 1000) : null,
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
  return callStripe("cancel the duplicate subscription", () =>
    stripe.subscriptions.cancel(
      subscriptionId,
      { prorate: true, invoice_now: true },
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
  return callStripe("read the charge", () => stripe.charges.retrieve(chargeId));
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
  return callStripe("preview the invoice", () =>
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
