/**
 * A local HTTP server speaking the parts of Stripe's REST API (v1) that zigznote uses, so the
 * real `stripe` SDK runs in tests against it (point the SDK at `fake.clientSettings()`).
 *
 * Speaks:
 *   POST   /v1/customers                    create (name, email, metadata)
 *   GET    /v1/customers/:id                retrieve ({ id, deleted: true } once deleted)
 *   DELETE /v1/customers/:id                delete (cancels its subscriptions; customer.deleted)
 *   POST   /v1/subscriptions                create (customer, items[n][price|quantity], metadata)
 *   GET    /v1/subscriptions/:id            retrieve
 *   POST   /v1/subscriptions/:id            update (items[n][id|price|quantity|deleted],
 *                                           cancel_at_period_end, proration_behavior, metadata)
 *   DELETE /v1/subscriptions/:id            cancel now
 *   POST   /v1/checkout/sessions            create (mode=subscription, customer, client_reference_id,
 *                                           line_items, metadata, subscription_data[metadata],
 *                                           success_url, cancel_url, expires_at)
 *   GET    /v1/checkout/sessions            list (customer, status, limit, starting_after): a list
 *                                           object { object: "list", data, has_more, url }, newest first
 *   GET    /v1/checkout/sessions/:id        retrieve
 *   POST   /v1/checkout/sessions/:id/expire expire an open session (400 when it is not open)
 *   POST   /v1/billing_portal/sessions      create (customer, return_url, flow_data[type|
 *                                           subscription_cancel|subscription_update|after_completion])
 *   POST   /v1/invoices/create_preview      the next invoice (customer|customer_details,
 *                                           subscription?, subscription_details[items|proration_behavior])
 *   GET    /v1/invoices                     list (customer, status, limit, starting_after), newest first
 *   GET    /v1/invoices/:id                 retrieve
 *   POST   /v1/invoices/:id/void            void an open or uncollectible invoice (fake.voidInvoice)
 *   POST   /v1/invoices/:id/mark_uncollectible   mark an open invoice uncollectible
 *   GET    /v1/invoices?subscription=       the subscription's invoices
 *   GET    /v1/invoice_payments             list (invoice, status, limit, starting_after): a paid
 *                                           invoice's payment, by its charge's PaymentIntent
 *   GET    /v1/charges/:id                  retrieve
 *   POST   /v1/refunds                      refund a charge (charge or payment_intent, amount?,
 *                                           metadata, reason): in full by default; 400
 *                                           charge_already_refunded when nothing is left,
 *                                           charge_disputed while disputed; charge.refunded
 *   Checkout Sessions also take automatic_tax, billing_address_collection, customer_update,
 *   tax_id_collection, allow_promotion_codes, payment_method_collection and
 *   subscription_data[trial_period_days|trial_settings], with Stripe's rules between them.
 * Requests are form-encoded (POST body, GET/DELETE query) as the SDK sends them; answers and
 * errors have Stripe's shapes (`{ error: { type, code, message } }`), subscription items carry
 * `current_period_start/end` as in recent API versions, prices must be registered first
 * (`addPrice`), and `Authorization: Bearer <secretKey>` is checked.
 *
 * Idempotency, like Stripe: a POST/DELETE with an `Idempotency-Key` already seen returns the
 * stored response (header `Idempotent-Replayed: true`); the same key with other parameters gets
 * 400 `idempotency_error`. Responses refused before anything happened (programmed failures,
 * auth) are not stored, so a retry executes.
 *
 * Inspection and control:
 *   fake.requests            every request: { method, path, params, idempotencyKey, status, replayed,
 *                            response }
 *   fake.customers / fake.subscriptions   current state (Maps by id)
 *   fake.events              Stripe events the changes produced (customer.subscription.*), in order
 *   fake.failNext(rule)      program failures: { method?, path? (RegExp or substring), times? (1),
 *                            status? (500), type?, message?, mode? } with mode
 *                            "before" (fail, change nothing), "after" (apply the change, store it
 *                            under the key, answer an error: a retry replays the success) or
 *                            "drop" (apply, then cut the connection without answering)
 *   fake.beforeNext({ method?, path? }, action)   runs `action` once, just before the next
 *                            matching request is applied (something happening at Stripe meanwhile)
 *   fake.buildEvent(type, object, { created?, previousAttributes? })   a Stripe.Event
 *   fake.invoiceEvent(type, subscriptionId, { amountDue?, attemptCount?, created?, invoiceId? })
 *                            an invoice.* event for the subscription (invoice.parent.subscription_details):
 *                            payment_failed, payment_action_required, paid, payment_succeeded, voided;
 *                            `invoiceId` continues an invoice already issued. The invoice is kept
 *                            (listed by GET /v1/invoices); a paid one leaves a charge behind
 *   fake.failRenewal(subscriptionId, { created? })   a renewal whose payment fails: a new open
 *                            invoice, invoice.payment_failed, and the subscription past_due with
 *                            it as `latest_invoice` (customer.subscription.updated); returns both
 *   fake.voidInvoice(invoiceId, { created? }) / POST /v1/invoices/:id/void   voids an open or
 *                            uncollectible invoice (invoice.voided); a past_due/unpaid subscription
 *                            whose latest invoice it was turns active (customer.subscription.updated)
 *   fake.markUncollectible(invoiceId, { created? }) / POST /v1/invoices/:id/mark_uncollectible
 *                            invoice.marked_uncollectible; the subscription's status is unchanged
 *   fake.completeCheckout(sessionId, { email?, card?, address?, taxId? })   pays an open Checkout
 *                            Session as the hosted page would: saves what the page collected on
 *                            the customer (customer.updated, customer.tax_id.created), attaches the
 *                            card (payment_method.attached; none in a trial that does not require
 *                            one), creates the subscription (customer.subscription.created,
 *                            trialing with a trial), completes the session
 *                            (checkout.session.completed), pays the first invoice (invoice.paid);
 *                            returns those events in Stripe's order
 *   fake.attachCard / setCustomerDefault / setSubscriptionDefault / updateCardAutomatically /
 *   detachPaymentMethod / setCustomerAddress / addTaxId / deleteTaxId / trialWillEnd / endTrial /
 *   disputeEvent    what happens at Stripe outside our requests, each with the event Stripe sends
 *   fake.checkoutSessions    Checkout Sessions by id; fake.refunds   refunds by id
 *   fake.setNow(fn)          the clock used for `created` and periods (default: Date.now)
 *   signStripeEvent(event, secret)   payload + `stripe-signature` header (the SDK's test helper)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isDeepStrictEqual } from "node:util";
import qs from "qs";
import Stripe from "stripe";
import {
  addressObject,
  cardPaymentMethodObject,
  chargeObject,
  disputeObject,
  invoiceObject,
  invoicePaymentObject,
  portalSessionObject,
  refundObject,
  taxIdObject,
} from "./stripeObjects";

export interface RecordedRequest {
  method: string;
  path: string;
  params: Record<string, unknown>;
  idempotencyKey: string | null;
  status: number;
  replayed: boolean;
  /** The answer's body as sent (undefined for a dropped connection). */
  response?: unknown;
}

export interface FailureRule {
  method?: string;
  path?: RegExp | string;
  times?: number;
  status?: number;
  type?: string;
  message?: string;
  mode?: "before" | "after" | "drop";
}

interface StoredResponse {
  fingerprint: { method: string; path: string; params: unknown };
  status: number;
  body: unknown;
}

interface Answer {
  status: number;
  body: unknown;
}

type Json = Record<string, unknown>;

class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

const DAY_S = 24 * 60 * 60;
let counter = 0;
function stripeId(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(36)}${counter.toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}

export class FakeStripeServer {
  readonly requests: RecordedRequest[] = [];
  readonly customers = new Map<string, Json>();
  readonly subscriptions = new Map<string, Json>();
  readonly prices = new Map<string, Json>();
  readonly checkoutSessions = new Map<string, Json>();
  readonly invoices = new Map<string, Json>();
  readonly charges = new Map<string, Json>();
  readonly paymentMethods = new Map<string, Json>();
  readonly taxIds = new Map<string, Json>();
  readonly disputes = new Map<string, Json>();
  readonly refunds = new Map<string, Json>();
  readonly events: Stripe.Event[] = [];
  private readonly idempotent = new Map<string, StoredResponse>();
  private readonly failures: (FailureRule & { remaining: number })[] = [];
  private readonly interceptions: { rule: FailureRule; action: () => void }[] = [];
  private readonly declinedFirstPayments = new Set<string>();
  private readonly deletedCustomers = new Set<string>();
  private now: () => Date = () => new Date();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly secretKey: string,
  ) {}

  static async start(options: { secretKey?: string } = {}): Promise<FakeStripeServer> {
    const secretKey = options.secretKey ?? "sk_test_fake";
    const holder: { fake?: FakeStripeServer } = {};
    const server = createServer((req, res) => {
      void holder.fake!.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    holder.fake = new FakeStripeServer(server, (server.address() as AddressInfo).port, secretKey);
    return holder.fake;
  }

  /** Settings for `createStripeClient` (no retry delay surprises: the SDK's own back-off). */
  clientSettings(overrides: { maxNetworkRetries?: number } = {}) {
    return {
      secretKey: this.secretKey,
      host: "127.0.0.1",
      port: this.port,
      protocol: "http" as const,
      maxNetworkRetries: overrides.maxNetworkRetries ?? 2,
      timeoutMs: 5_000,
    };
  }

  setNow(now: () => Date): void {
    this.now = now;
  }

  addPrice(input: { id: string; unitAmount: number; currency?: string }): Json {
    const price: Json = {
      id: input.id,
      object: "price",
      active: true,
      billing_scheme: "per_unit",
      created: this.seconds(),
      currency: input.currency ?? "usd",
      livemode: false,
      lookup_key: null,
      metadata: {},
      nickname: null,
      product: `prod_${input.id}`,
      recurring: { interval: "month", interval_count: 1, meter: null, usage_type: "licensed" },
      tax_behavior: "unspecified",
      type: "recurring",
      unit_amount: input.unitAmount,
      unit_amount_decimal: String(input.unitAmount),
    };
    this.prices.set(input.id, price);
    return price;
  }

  failNext(rule: FailureRule): void {
    this.failures.push({ ...rule, remaining: rule.times ?? 1 });
  }

  beforeNext(rule: Pick<FailureRule, "method" | "path">, action: () => void): void {
    this.interceptions.push({ rule, action });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Requests matching a method and path fragment (e.g. "POST", "/v1/subscriptions"). */
  requestsTo(method: string, pathFragment: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.includes(pathFragment));
  }

  buildEvent(
    type: string,
    object: Json,
    options: { created?: number; previousAttributes?: Json } = {},
  ): Stripe.Event {
    return {
      id: stripeId("evt"),
      object: "event",
      api_version: Stripe.API_VERSION,
      created: options.created ?? this.seconds(),
      data: {
        object: structuredClone(object),
        ...(options.previousAttributes ? { previous_attributes: options.previousAttributes } : {}),
      },
      livemode: false,
      pending_webhooks: 1,
      request: { id: stripeId("req"), idempotency_key: null },
      type,
    } as unknown as Stripe.Event;
  }

  invoiceEvent(
    type:
      | "invoice.payment_failed"
      | "invoice.paid"
      | "invoice.payment_succeeded"
      | "invoice.payment_action_required"
      | "invoice.voided"
      | "invoice.marked_uncollectible",
    subscriptionId: string,
    options: {
      amountDue?: number;
      attemptCount?: number;
      created?: number;
      invoiceId?: string;
    } = {},
  ): Stripe.Event {
    const subscription = this.subscriptions.get(subscriptionId);
    const customer = (subscription?.customer as string | undefined) ?? null;
    const now = options.created ?? this.seconds();
    const existing = options.invoiceId ? this.invoices.get(options.invoiceId) : undefined;
    const status =
      type === "invoice.paid" || type === "invoice.payment_succeeded"
        ? "paid"
        : type === "invoice.voided"
          ? "void"
          : type === "invoice.marked_uncollectible"
            ? "uncollectible"
            : "open";
    const item = (subscription?.items as { data: Json[] } | undefined)?.data[0];
    const id = existing ? (existing.id as string) : (options.invoiceId ?? stripeId("in"));
    const amount = options.amountDue ?? (existing?.amount_due as number | undefined) ?? 1900;
    const period = existing
      ? ((existing.lines as { data: Json[] }).data[0]!.period as { start: number; end: number })
      : {
          start: Number(item?.current_period_start ?? now),
          end: Number(item?.current_period_end ?? now + 30 * DAY_S),
        };
    const customerRecord = customer ? this.customers.get(customer) : undefined;
    const invoice = invoiceObject({
      id,
      customer,
      customerEmail: (customerRecord?.email as string | null | undefined) ?? null,
      subscriptionId,
      price: (item?.price as Json | undefined) ?? null,
      subscriptionItemId: (item?.id as string | undefined) ?? null,
      amountDue: amount,
      currency: "usd",
      status,
      created: (existing?.created as number | undefined) ?? now,
      attemptCount: options.attemptCount ?? (status === "void" ? 0 : 1),
      periodStart: period.start,
      periodEnd: period.end,
      number:
        (existing?.number as string | undefined) ??
        `${(customerRecord?.invoice_prefix as string | undefined) ?? "TEST"}-${String(this.invoices.size + 1).padStart(4, "0")}`,
      billingReason: "subscription_cycle",
    });
    this.invoices.set(id, invoice);
    if (status === "paid" && ![...this.charges.values()].some((c) => c.invoice === id)) {
      const card = customer ? this.defaultCardOf(customer, subscriptionId) : null;
      const charge = chargeObject({
        id: stripeId("ch"),
        customer,
        amount,
        currency: "usd",
        created: now,
        paymentIntent: stripeId("pi"),
        card: card
          ? {
              brand: (card.card as Json).brand as string,
              last4: (card.card as Json).last4 as string,
              expMonth: (card.card as Json).exp_month as number,
              expYear: (card.card as Json).exp_year as number,
            }
          : null,
      });
      // Kept beside the charge (a charge no longer names its invoice in this API version).
      this.charges.set(charge.id as string, { ...charge, invoice: id });
    }
    return this.buildEvent(type, invoice, { created: now });
  }

  /** The charge a paid invoice left behind. */
  chargeOf(invoiceId: string): Json {
    const charge = [...this.charges.values()].find((candidate) => candidate.invoice === invoiceId);
    if (!charge) throw new Error(`no charge for invoice ${invoiceId}`);
    return charge;
  }

  /** The card Stripe charges: the subscription's, else the customer's default. */
  private defaultCardOf(customerId: string, subscriptionId?: string): Json | null {
    const subscription = subscriptionId ? this.subscriptions.get(subscriptionId) : undefined;
    const customer = this.customers.get(customerId);
    const id =
      (subscription?.default_payment_method as string | null | undefined) ??
      ((customer?.invoice_settings as Json | undefined)?.default_payment_method as
        string | null | undefined);
    return id ? (this.paymentMethods.get(id) ?? null) : null;
  }

  /** A card attached to the customer (`payment_method.attached`). */
  attachCard(
    customerId: string,
    card: { brand?: string; last4?: string; expMonth: number; expYear: number },
  ): { paymentMethod: Json; event: Stripe.Event } {
    this.requireCustomer(customerId);
    const paymentMethod = cardPaymentMethodObject({
      id: stripeId("pm"),
      customer: customerId,
      brand: card.brand ?? "visa",
      last4: card.last4 ?? "4242",
      expMonth: card.expMonth,
      expYear: card.expYear,
      created: this.seconds(),
    });
    this.paymentMethods.set(paymentMethod.id as string, paymentMethod);
    return { paymentMethod, event: this.emit("payment_method.attached", paymentMethod) };
  }

  /** The customer's default payment method (`customer.updated`). */
  setCustomerDefault(customerId: string, paymentMethodId: string | null): Stripe.Event {
    const customer = this.requireCustomer(customerId);
    const settings = customer.invoice_settings as Json;
    const previous = { invoice_settings: { ...settings } };
    settings.default_payment_method = paymentMethodId;
    return this.emit("customer.updated", customer, previous);
  }

  /** The subscription's default payment method (`customer.subscription.updated`). */
  setSubscriptionDefault(subscriptionId: string, paymentMethodId: string | null): Stripe.Event {
    const subscription = this.requireSubscription(subscriptionId);
    const previous = { default_payment_method: subscription.default_payment_method };
    subscription.default_payment_method = paymentMethodId;
    return this.emit("customer.subscription.updated", subscription, previous);
  }

  /** The card updater's renewal: new expiry (and maybe number) from the bank. */
  updateCardAutomatically(
    paymentMethodId: string,
    card: { expMonth: number; expYear: number; last4?: string },
  ): Stripe.Event {
    const paymentMethod = this.requirePaymentMethod(paymentMethodId);
    const details = paymentMethod.card as Json;
    const previous = { card: { ...details } };
    details.exp_month = card.expMonth;
    details.exp_year = card.expYear;
    if (card.last4) details.last4 = card.last4;
    return this.emit("payment_method.automatically_updated", paymentMethod, previous);
  }

  /** Detaches a payment method from its customer (`payment_method.detached`). */
  detachPaymentMethod(paymentMethodId: string): Stripe.Event {
    const paymentMethod = this.requirePaymentMethod(paymentMethodId);
    const previous = { customer: paymentMethod.customer };
    paymentMethod.customer = null;
    return this.emit("payment_method.detached", paymentMethod, previous);
  }

  /** The customer's address, as a Checkout page or the portal saves it (`customer.updated`). */
  setCustomerAddress(customerId: string, address: Record<string, string>): Stripe.Event {
    const customer = this.requireCustomer(customerId);
    const previous = { address: customer.address };
    customer.address = addressObject(address);
    return this.emit("customer.updated", customer, previous);
  }

  /** A tax id saved on the customer (`customer.tax_id.created`). */
  addTaxId(
    customerId: string,
    input: { type: string; value: string; country?: string | null },
  ): { taxId: Json; event: Stripe.Event } {
    this.requireCustomer(customerId);
    const taxId = taxIdObject({
      id: stripeId("txi"),
      customer: customerId,
      type: input.type,
      value: input.value,
      country: input.country ?? null,
      created: this.seconds(),
      verificationStatus: input.type === "eu_vat" ? "pending" : "unavailable",
    });
    this.taxIds.set(taxId.id as string, taxId);
    return { taxId, event: this.emit("customer.tax_id.created", taxId) };
  }

  /** Stripe's check of a tax id came back (`customer.tax_id.updated`). */
  verifyTaxId(taxIdId: string, status: "verified" | "unverified"): Stripe.Event {
    const taxId = this.taxIds.get(taxIdId);
    if (!taxId) throw new Error(`no tax id ${taxIdId}`);
    const verification = taxId.verification as Json;
    const previous = { verification: { ...verification } };
    verification.status = status;
    return this.emit("customer.tax_id.updated", taxId, previous);
  }

  deleteTaxId(taxIdId: string): Stripe.Event {
    const taxId = this.taxIds.get(taxIdId);
    if (!taxId) throw new Error(`no tax id ${taxIdId}`);
    this.taxIds.delete(taxIdId);
    return this.emit("customer.tax_id.deleted", taxId);
  }

  /** Stripe's notice three days before a trial ends (`customer.subscription.trial_will_end`). */
  trialWillEnd(subscriptionId: string): Stripe.Event {
    const subscription = this.requireSubscription(subscriptionId);
    if (subscription.status !== "trialing") throw new Error(`${subscriptionId} is not trialing`);
    return this.emit("customer.subscription.trial_will_end", subscription);
  }

  /**
   * The trial's end: with a payment method the subscription turns active and its first invoice
   * is paid; without one it follows `trial_settings.end_behavior.missing_payment_method`
   * (cancel: deleted; pause: paused; create_invoice: past_due with an open invoice).
   */
  endTrial(subscriptionId: string): Stripe.Event[] {
    const subscription = this.requireSubscription(subscriptionId);
    if (subscription.status !== "trialing") throw new Error(`${subscriptionId} is not trialing`);
    const first = this.events.length;
    const now = this.seconds();
    const card = this.defaultCardOf(subscription.customer as string, subscriptionId);
    const behavior = (
      (subscription.trial_settings as Json | null)?.end_behavior as Json | undefined
    )?.missing_payment_method;
    if (card) {
      subscription.status = "active";
      this.emit("customer.subscription.updated", subscription, { status: "trialing" });
      this.events.push(this.invoiceEvent("invoice.paid", subscriptionId, { created: now }));
    } else if (behavior === "cancel") {
      subscription.status = "canceled";
      subscription.canceled_at = now;
      subscription.ended_at = now;
      subscription.cancellation_details = {
        comment: null,
        feedback: null,
        reason: "cancellation_requested",
      };
      this.emit("customer.subscription.deleted", subscription);
    } else if (behavior === "pause") {
      subscription.status = "paused";
      this.emit("customer.subscription.updated", subscription, { status: "trialing" });
    } else {
      subscription.status = "past_due";
      this.emit("customer.subscription.updated", subscription, { status: "trialing" });
      this.events.push(this.invoiceEvent("invoice.payment_failed", subscriptionId));
    }
    return this.events.slice(first);
  }

  /**
   * A dispute of a charge as Stripe reports it (`charge.dispute.created` / `.updated` /
   * `.closed`); the same `disputeId` continues one dispute.
   */
  disputeEvent(
    type: "charge.dispute.created" | "charge.dispute.updated" | "charge.dispute.closed",
    chargeId: string,
    options: {
      disputeId?: string;
      status?: string;
      reason?: string;
      amount?: number;
      created?: number;
      evidenceDueBy?: number | null;
    } = {},
  ): Stripe.Event {
    const charge = this.charges.get(chargeId);
    if (!charge) throw new Error(`no charge ${chargeId}`);
    const now = options.created ?? this.seconds();
    const existing = options.disputeId ? this.disputes.get(options.disputeId) : undefined;
    const dispute = disputeObject({
      id: (existing?.id as string | undefined) ?? options.disputeId ?? stripeId("dp"),
      charge: chargeId,
      paymentIntent: charge.payment_intent as string | null,
      amount: options.amount ?? (existing?.amount as number | undefined) ?? Number(charge.amount),
      currency: charge.currency as string,
      reason: options.reason ?? (existing?.reason as string | undefined) ?? "fraudulent",
      status:
        options.status ??
        (type === "charge.dispute.closed" ? "lost" : (existing?.status as string | undefined)) ??
        "needs_response",
      created: (existing?.created as number | undefined) ?? now,
      evidenceDueBy:
        options.evidenceDueBy !== undefined
          ? options.evidenceDueBy
          : (((existing?.evidence_details as Json | undefined)?.due_by as number | null) ??
            now + 14 * DAY_S),
      brand:
        (((charge.payment_method_details as Json | null)?.card as Json | undefined)?.brand as
          string | undefined) ?? "visa",
    });
    this.disputes.set(dispute.id as string, dispute);
    if (type === "charge.dispute.created") charge.disputed = true;
    return this.buildEvent(type, dispute, { created: now });
  }

  private requirePaymentMethod(id: string): Json {
    const paymentMethod = this.paymentMethods.get(id);
    if (!paymentMethod) throw missing("payment_method", id, "payment_method");
    return paymentMethod;
  }

  /**
   * The next subscription created for `customerId` has its first payment declined, as Stripe
   * does with `payment_behavior=allow_incomplete` (the default): the subscription is created
   * `incomplete` and its first invoice (`subscription_create`) fails with no retry scheduled
   * (`next_payment_attempt: null`: Stripe does not retry a first invoice).
   */
  declineFirstPayment(customerId: string): void {
    this.declinedFirstPayments.add(customerId);
  }

  /** An incomplete subscription whose first invoice was not paid within 23 hours. */
  expireIncomplete(subscriptionId: string): Stripe.Event {
    const subscription = this.requireSubscription(subscriptionId);
    if (subscription.status !== "incomplete")
      throw new Error(`${subscriptionId} is not incomplete`);
    subscription.status = "incomplete_expired";
    subscription.ended_at = this.seconds();
    return this.emit("customer.subscription.updated", subscription, { status: "incomplete" });
  }

  /**
   * A renewal whose payment fails: a new open invoice of the subscription fails
   * (`invoice.payment_failed`) and the subscription turns past_due with it as its latest invoice
   * (`customer.subscription.updated`), both created at `created` (default: now).
   */
  failRenewal(subscriptionId: string, options: { created?: number } = {}): Stripe.Event[] {
    const subscription = this.requireSubscription(subscriptionId);
    const created = options.created ?? this.seconds();
    const failed = this.invoiceEvent("invoice.payment_failed", subscriptionId, { created });
    this.events.push(failed);
    const previous = { status: subscription.status, latest_invoice: subscription.latest_invoice };
    subscription.status = "past_due";
    subscription.latest_invoice = (failed.data.object as unknown as Json).id;
    const updated = this.buildEvent("customer.subscription.updated", subscription, {
      created,
      previousAttributes: previous,
    });
    this.events.push(updated);
    return [failed, updated];
  }

  /**
   * Voids an invoice as support would in the dashboard (`invoice.voided`): only an open or
   * uncollectible one (Stripe refuses the others). A past_due/unpaid subscription whose latest
   * invoice it was is owed nothing more and turns active (`customer.subscription.updated`).
   */
  voidInvoice(invoiceId: string, options: { created?: number } = {}): Stripe.Event[] {
    const invoice = this.invoices.get(invoiceId);
    if (!invoice) throw missing("invoice", invoiceId, "invoice");
    if (invoice.status !== "open" && invoice.status !== "uncollectible") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `You can only void an open or uncollectible invoice; ${invoiceId} is ${String(invoice.status)}.`,
        "invoice_not_open",
      );
    }
    const subscriptionId = invoiceSubscriptionOf(invoice);
    const created = options.created ?? this.seconds();
    const voided = this.invoiceEvent("invoice.voided", subscriptionId, { created, invoiceId });
    for (const copy of [this.invoices.get(invoiceId)!, voided.data.object as unknown as Json]) {
      (copy.status_transitions as Json).voided_at = created;
    }
    this.events.push(voided);
    const subscription = this.subscriptions.get(subscriptionId);
    if (
      subscription &&
      subscription.latest_invoice === invoiceId &&
      (subscription.status === "past_due" || subscription.status === "unpaid")
    ) {
      const previous = { status: subscription.status };
      subscription.status = "active";
      const updated = this.buildEvent("customer.subscription.updated", subscription, {
        created,
        previousAttributes: previous,
      });
      this.events.push(updated);
      return [voided, updated];
    }
    return [voided];
  }

  /**
   * Marks an open invoice uncollectible (`invoice.marked_uncollectible`): bad debt for the
   * accounts, still payable; the subscription's status is left as it is.
   */
  markUncollectible(invoiceId: string, options: { created?: number } = {}): Stripe.Event {
    const invoice = this.invoices.get(invoiceId);
    if (!invoice) throw missing("invoice", invoiceId, "invoice");
    if (invoice.status !== "open") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `You can only mark an open invoice uncollectible; ${invoiceId} is ${String(invoice.status)}.`,
        "invoice_not_open",
      );
    }
    const created = options.created ?? this.seconds();
    const event = this.invoiceEvent(
      "invoice.marked_uncollectible",
      invoiceSubscriptionOf(invoice),
      {
        created,
        invoiceId,
      },
    );
    for (const copy of [this.invoices.get(invoiceId)!, event.data.object as unknown as Json]) {
      (copy.status_transitions as Json).marked_uncollectible_at = created;
    }
    this.events.push(event);
    return event;
  }

  /** Sets a subscription's status as Stripe would on its own (dunning), with its event. */
  setSubscriptionStatus(subscriptionId: string, status: string): Stripe.Event {
    const subscription = this.requireSubscription(subscriptionId);
    const previous = subscription.status;
    subscription.status = status;
    return this.emit("customer.subscription.updated", subscription, { status: previous });
  }

  private seconds(): number {
    return Math.floor(this.now().getTime() / 1000);
  }

  private emit(type: string, object: Json, previousAttributes?: Json): Stripe.Event {
    const event = this.buildEvent(type, object, previousAttributes ? { previousAttributes } : {});
    this.events.push(event);
    return event;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = (req.method ?? "GET").toUpperCase();
    const raw = method === "POST" ? Buffer.concat(chunks).toString("utf8") : url.search.slice(1);
    const params = qs.parse(raw, { arrayLimit: 100, depth: 10 }) as Json;
    const headerKey = req.headers["idempotency-key"];
    const idempotencyKey = typeof headerKey === "string" ? headerKey : null;
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      params,
      idempotencyKey,
      status: 0,
      replayed: false,
    };
    this.requests.push(record);

    const send = (answer: Answer, headers: Record<string, string> = {}) => {
      record.status = answer.status;
      record.response = answer.body;
      res.writeHead(answer.status, {
        "content-type": "application/json",
        "request-id": stripeId("req"),
        ...headers,
      });
      res.end(JSON.stringify(answer.body));
    };

    if (req.headers.authorization !== `Bearer ${this.secretKey}`) {
      send(
        errorAnswer(new StripeApiError(401, "invalid_request_error", "Invalid API Key provided")),
      );
      return;
    }

    const isKeyed = idempotencyKey !== null && (method === "POST" || method === "DELETE");
    const fingerprint = { method, path: url.pathname, params };
    if (isKeyed) {
      const stored = this.idempotent.get(idempotencyKey);
      if (stored) {
        if (!isDeepStrictEqual(stored.fingerprint, fingerprint)) {
          send(
            errorAnswer(
              new StripeApiError(
                400,
                "idempotency_error",
                `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
              ),
            ),
          );
          return;
        }
        record.replayed = true;
        send({ status: stored.status, body: stored.body }, { "idempotent-replayed": "true" });
        return;
      }
    }

    const failure = this.takeFailure(method, url.pathname);
    if (failure && (failure.mode ?? "before") === "before") {
      send(failureAnswer(failure));
      return;
    }

    const interception = this.interceptions.findIndex(({ rule }) =>
      matches(rule, method, url.pathname),
    );
    if (interception >= 0) this.interceptions.splice(interception, 1)[0]!.action();

    let answer: Answer;
    try {
      answer = { status: 200, body: this.route(method, url.pathname, params) };
    } catch (error) {
      if (!(error instanceof StripeApiError)) throw error;
      answer = errorAnswer(error);
    }
    if (isKeyed) {
      this.idempotent.set(idempotencyKey, {
        fingerprint,
        status: answer.status,
        body: answer.body,
      });
    }
    if (failure?.mode === "drop") {
      record.status = -1;
      req.socket.destroy();
      return;
    }
    if (failure?.mode === "after") {
      send(failureAnswer(failure));
      return;
    }
    send(answer, isKeyed ? { "idempotency-key": idempotencyKey } : {});
  }

  private takeFailure(method: string, path: string): (FailureRule & { remaining: number }) | null {
    const rule = this.failures.find(
      (candidate) => candidate.remaining > 0 && matches(candidate, method, path),
    );
    if (!rule) return null;
    rule.remaining -= 1;
    return rule;
  }

  private route(method: string, path: string, params: Json): unknown {
    const parts = path.split("/").filter(Boolean);
    if (parts[0] !== "v1") throw notFoundRoute(method, path);
    const [, resource, id] = parts;
    if (resource === "customers") {
      if (method === "POST" && !id) return this.createCustomer(params);
      if (method === "GET" && id) {
        if (this.deletedCustomers.has(id)) return { id, object: "customer", deleted: true };
        return this.requireCustomer(id);
      }
      if (method === "DELETE" && id) return this.deleteCustomer(id);
    }
    if (resource === "checkout" && id === "sessions") {
      const [, , , sessionId, action] = parts;
      if (method === "POST" && !sessionId) return this.createCheckoutSession(params);
      if (method === "GET" && !sessionId) return this.listCheckoutSessions(params);
      if (method === "GET" && sessionId && !action) {
        return this.publicSession(this.requireSession(sessionId));
      }
      if (method === "POST" && sessionId && action === "expire") {
        return this.expireCheckoutSession(sessionId);
      }
    }
    if (resource === "billing_portal" && id === "sessions" && method === "POST" && !parts[3]) {
      return this.createPortalSession(params);
    }
    if (resource === "invoices" && id === "create_preview" && method === "POST") {
      return this.previewInvoice(params);
    }
    if (resource === "invoices" && method === "POST" && id && parts[3] === "void") {
      return this.voidInvoice(id)[0]!.data.object;
    }
    if (resource === "invoices" && method === "POST" && id && parts[3] === "mark_uncollectible") {
      return this.markUncollectible(id).data.object;
    }
    if (resource === "invoices" && method === "GET" && !parts[3]) {
      if (!id) return this.listInvoices(params);
      const invoice = this.invoices.get(id);
      if (!invoice) throw missing("invoice", id, "invoice");
      return invoice;
    }
    if (resource === "charges" && method === "GET" && id && !parts[3]) {
      const charge = this.charges.get(id);
      if (!charge) throw missing("charge", id, "charge");
      return publicCharge(charge);
    }
    if (resource === "invoice_payments" && method === "GET" && !id) {
      return this.listInvoicePayments(params);
    }
    if (resource === "refunds" && method === "POST" && !id) return this.createRefund(params);
    if (resource === "subscriptions") {
      if (method === "POST" && !id) return this.createSubscription(params);
      if (method === "GET" && id) return this.requireSubscription(id);
      if (method === "POST" && id) return this.updateSubscription(id, params);
      if (method === "DELETE" && id) return this.cancelSubscription(id);
    }
    throw notFoundRoute(method, path);
  }

  /** Pays an open Checkout Session as Stripe's hosted page would (see the header). */
  completeCheckout(
    sessionId: string,
    options: {
      email?: string;
      /** The card typed on the page; `false`: none (only where the session does not require one). */
      card?: { brand?: string; last4?: string; expMonth: number; expYear: number } | false;
      address?: Record<string, string>;
      taxId?: { type: string; value: string; country?: string };
    } = {},
  ): Stripe.Event[] {
    const session = this.checkoutSessions.get(sessionId) && this.requireSession(sessionId);
    if (!session || session.status !== "open") throw new Error(`no open session ${sessionId}`);
    const first = this.events.length;
    const customerId = session.customer as string;
    const customer = this.requireCustomer(customerId);
    const data = (session.subscription_data as Json | undefined) ?? {};
    const trialDays = data.trial_period_days === undefined ? 0 : Number(data.trial_period_days);
    const update = (session.customer_update as Json | undefined) ?? {};
    // The e-mail typed on the page becomes the customer's (as Stripe keeps it).
    if (options.email) customer.email = options.email;
    const email = customer.email as string | null;
    if (session.billing_address_collection === "required" && !options.address) {
      throw new Error("this session requires a billing address");
    }
    if (options.address && update.address === "auto") {
      this.setCustomerAddress(customerId, options.address);
    }
    if (options.taxId) {
      if ((session.tax_id_collection as Json | undefined)?.enabled !== "true") {
        throw new Error("this session does not collect tax ids");
      }
      this.addTaxId(customerId, options.taxId);
    }
    const needsCard = !(trialDays > 0 && session.payment_method_collection === "if_required");
    if (options.card === false && needsCard) throw new Error("this session requires a card");
    let paymentMethodId: string | null = null;
    if (options.card !== false) {
      paymentMethodId = this.attachCard(
        customerId,
        options.card ?? { expMonth: 12, expYear: new Date(this.now()).getUTCFullYear() + 3 },
      ).paymentMethod.id as string;
    }
    const lineItems = (session.line_items as Json[]).map((item) => ({ ...item }));
    const subscription = this.createSubscription({
      customer: customerId,
      items: lineItems,
      metadata: data.metadata ?? {},
      ...(paymentMethodId ? { default_payment_method: paymentMethodId } : {}),
      ...(trialDays > 0
        ? { trial_period_days: data.trial_period_days, trial_settings: data.trial_settings }
        : {}),
    });
    session.status = "complete";
    session.payment_status = trialDays > 0 ? "no_payment_required" : "paid";
    session.subscription = subscription.id;
    session.customer_details = {
      address: options.address ? addressObject(options.address) : null,
      email: email ?? null,
      name: null,
      phone: null,
      tax_exempt: "none",
      tax_ids: options.taxId ? [{ type: options.taxId.type, value: options.taxId.value }] : [],
    };
    this.emit("checkout.session.completed", this.publicSession(session));
    const paid = this.invoiceEvent("invoice.paid", subscription.id as string, {
      ...(trialDays > 0 ? { amountDue: 0 } : {}),
    });
    this.events.push(paid);
    return this.events.slice(first);
  }

  private publicSession(session: Json): Json {
    const { line_items: _items, subscription_data: _data, ...rest } = session;
    return rest;
  }

  private createCheckoutSession(params: Json): Json {
    if (params.mode !== "subscription") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "This fake speaks mode=subscription only",
        "parameter_invalid",
        "mode",
      );
    }
    const customerId = params.customer;
    if (typeof customerId !== "string" || !this.customers.has(customerId)) {
      throw missing("customer", String(customerId), "customer");
    }
    const lineItems = (params.line_items as Json[] | undefined) ?? [];
    if (lineItems.length === 0) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "Missing required param: line_items.",
        "parameter_missing",
        "line_items",
      );
    }
    lineItems.forEach((item, index) =>
      this.requirePrice(item.price, `line_items[${index}][price]`),
    );
    for (const param of ["success_url", "cancel_url"]) {
      if (typeof params[param] !== "string") {
        throw new StripeApiError(
          400,
          "invalid_request_error",
          `Missing required param: ${param}.`,
          "parameter_missing",
          param,
        );
      }
    }
    const now = this.seconds();
    let expiresAt = now + DAY_S;
    if (params.expires_at !== undefined) {
      expiresAt = Number(params.expires_at);
      if (!Number.isInteger(expiresAt) || expiresAt < now + 30 * 60 || expiresAt > now + DAY_S) {
        throw new StripeApiError(
          400,
          "invalid_request_error",
          "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.",
          "parameter_invalid_integer",
          "expires_at",
        );
      }
    }
    this.checkCheckoutOptions(params, customerId);
    const id = stripeId("cs_test");
    const session: Json = {
      id,
      object: "checkout.session",
      mode: "subscription",
      automatic_tax: {
        enabled: (params.automatic_tax as Json | undefined)?.enabled === "true",
        liability: null,
        provider: null,
        status: null,
      },
      allow_promotion_codes: params.allow_promotion_codes === "true" ? true : null,
      billing_address_collection: params.billing_address_collection ?? null,
      customer_update: params.customer_update ?? null,
      tax_id_collection: params.tax_id_collection ?? { enabled: false, required: "never" },
      payment_method_collection: params.payment_method_collection ?? "always",
      status: "open",
      payment_status: "unpaid",
      customer: customerId,
      client_reference_id: params.client_reference_id ?? null,
      metadata: params.metadata ?? {},
      success_url: params.success_url,
      cancel_url: params.cancel_url,
      subscription: null,
      customer_details: null,
      created: this.seconds(),
      expires_at: expiresAt,
      livemode: false,
      url: `https://checkout.stripe.test/c/pay/${id}`,
      line_items: lineItems,
      subscription_data: params.subscription_data ?? {},
    };
    this.checkoutSessions.set(id, session);
    return this.publicSession(session);
  }

  /**
   * The rules Stripe applies between a subscription Checkout Session's options (its answers to
   * a session that breaks them, as 400 invalid_request_error).
   */
  private checkCheckoutOptions(params: Json, customerId: string): void {
    const invalid = (message: string, param: string) =>
      new StripeApiError(400, "invalid_request_error", message, "parameter_invalid", param);
    const bool = (value: unknown, param: string) => {
      if (value !== undefined && value !== "true" && value !== "false") {
        throw invalid(`Invalid boolean: ${JSON.stringify(value)}`, param);
      }
      return value === "true";
    };
    const oneOf = (value: unknown, allowed: string[], param: string) => {
      if (value !== undefined && (typeof value !== "string" || !allowed.includes(value))) {
        throw invalid(`Invalid ${param}: must be one of ${allowed.join(", ")}`, param);
      }
    };
    const isTaxed = bool(
      (params.automatic_tax as Json | undefined)?.enabled,
      "automatic_tax[enabled]",
    );
    const collectsTaxIds = bool(
      (params.tax_id_collection as Json | undefined)?.enabled,
      "tax_id_collection[enabled]",
    );
    bool(params.allow_promotion_codes, "allow_promotion_codes");
    oneOf(params.billing_address_collection, ["auto", "required"], "billing_address_collection");
    oneOf(params.payment_method_collection, ["always", "if_required"], "payment_method_collection");
    const update = (params.customer_update as Json | undefined) ?? {};
    for (const key of Object.keys(update)) {
      if (!["address", "name", "shipping"].includes(key)) {
        throw invalid(
          `Received unknown parameter: customer_update[${key}]`,
          `customer_update[${key}]`,
        );
      }
      oneOf(update[key], ["auto", "never"], `customer_update[${key}]`);
    }
    const customer = this.requireCustomer(customerId);
    const hasAddress = Boolean((customer.address as Json | null)?.country);
    if (isTaxed && !hasAddress && update.address !== "auto" && update.shipping !== "auto") {
      throw invalid(
        "Automatic tax calculation in Checkout requires a valid address on the Customer. Add a valid address to the Customer or set either `customer_update[address]` to 'auto' or `customer_update[shipping]` to 'auto' to save the address entered in Checkout to the Customer.",
        "customer_update[address]",
      );
    }
    if (collectsTaxIds && update.name !== "auto") {
      throw invalid(
        "`tax_id_collection` requires `customer_update[name]` to be set to `auto` when used with an existing customer.",
        "customer_update[name]",
      );
    }
    const data = (params.subscription_data as Json | undefined) ?? {};
    if (data.trial_period_days !== undefined) {
      const days = Number(data.trial_period_days);
      if (!Number.isInteger(days) || days < 1 || days > 730) {
        throw invalid(
          "subscription_data[trial_period_days] must be between 1 and 730",
          "subscription_data[trial_period_days]",
        );
      }
    }
    const behavior = ((data.trial_settings as Json | undefined)?.end_behavior as Json | undefined)
      ?.missing_payment_method;
    oneOf(
      behavior,
      ["cancel", "create_invoice", "pause"],
      "subscription_data[trial_settings][end_behavior][missing_payment_method]",
    );
    if (
      params.payment_method_collection === "if_required" &&
      data.trial_period_days === undefined
    ) {
      // Without a trial (or a free price) the first invoice needs a card: Stripe collects one.
      throw invalid(
        "payment_method_collection=if_required needs a trial or a free subscription",
        "payment_method_collection",
      );
    }
  }

  /** A session past its `expires_at` is expired, as Stripe closes it by itself. */
  private requireSession(id: string): Json {
    const session = this.checkoutSessions.get(id);
    if (!session) throw missing("checkout.session", id, "session");
    if (session.status === "open" && Number(session.expires_at) <= this.seconds()) {
      session.status = "expired";
    }
    return session;
  }

  private listCheckoutSessions(params: Json): Json {
    const limit = listLimit(params);
    const statuses: unknown[] = ["open", "complete", "expired"];
    if (params.status !== undefined && !statuses.includes(params.status)) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `Invalid status: must be one of open, complete, or expired`,
        "parameter_invalid_string",
        "status",
      );
    }
    // Newest first, as Stripe lists; `starting_after` continues after that id.
    const matching = pageAfter(
      [...this.checkoutSessions.keys()].reverse().map((id) => this.requireSession(id)),
      params,
      "checkout.session",
    );
    return {
      object: "list",
      data: matching.slice(0, limit).map((session) => this.publicSession(session)),
      has_more: matching.length > limit,
      url: "/v1/checkout/sessions",
    };
  }

  private expireCheckoutSession(id: string): Json {
    const session = this.requireSession(id);
    if (session.status !== "open") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${String(session.status)}".`,
        "checkout_session_not_open",
      );
    }
    session.status = "expired";
    this.emit("checkout.session.expired", this.publicSession(session));
    return this.publicSession(session);
  }

  private createPortalSession(params: Json): Json {
    const customerId = params.customer;
    if (typeof customerId !== "string" || !this.customers.has(customerId)) {
      throw missing("customer", String(customerId), "customer");
    }
    return portalSessionObject({
      id: stripeId("bps"),
      customer: customerId,
      created: this.seconds(),
      returnUrl: (params.return_url as string | undefined) ?? null,
      flow: params.flow_data ? this.portalFlow(customerId, params.flow_data as Json) : null,
    });
  }

  /** `flow_data` checked as Stripe does, answered as the session's `flow`. */
  private portalFlow(customerId: string, data: Json): Json {
    const invalid = (message: string, param: string) =>
      new StripeApiError(400, "invalid_request_error", message, "parameter_invalid", param);
    const types = [
      "payment_method_update",
      "subscription_cancel",
      "subscription_update",
      "subscription_update_confirm",
    ];
    if (typeof data.type !== "string" || !types.includes(data.type)) {
      throw invalid(
        `Invalid flow_data[type]: must be one of ${types.join(", ")}`,
        "flow_data[type]",
      );
    }
    const type = data.type;
    const subscriptionOf = (key: string) => {
      const id = (data[key] as Json | undefined)?.subscription;
      if (typeof id !== "string") {
        throw new StripeApiError(
          400,
          "invalid_request_error",
          `Missing required param: flow_data[${key}][subscription].`,
          "parameter_missing",
          `flow_data[${key}][subscription]`,
        );
      }
      const subscription = this.subscriptions.get(id);
      if (!subscription || subscription.customer !== customerId) {
        throw missing("subscription", id, `flow_data[${key}][subscription]`);
      }
      if (subscription.status === "canceled") {
        throw invalid(
          "The subscription is canceled and cannot be used in a portal flow.",
          `flow_data[${key}][subscription]`,
        );
      }
      if (type === "subscription_cancel" && subscription.cancel_at_period_end === true) {
        throw invalid(
          "This subscription is already set to be canceled at the end of its period.",
          `flow_data[${key}][subscription]`,
        );
      }
      return id;
    };
    const completion = (data.after_completion as Json | undefined) ?? { type: "portal_homepage" };
    if (!["redirect", "hosted_confirmation", "portal_homepage"].includes(String(completion.type))) {
      throw invalid(
        "Invalid flow_data[after_completion][type]",
        "flow_data[after_completion][type]",
      );
    }
    const redirect = completion.redirect as Json | undefined;
    if (completion.type === "redirect" && typeof redirect?.return_url !== "string") {
      throw invalid(
        "flow_data[after_completion][redirect][return_url] is required for a redirect",
        "flow_data[after_completion][redirect][return_url]",
      );
    }
    return {
      type,
      after_completion: {
        type: completion.type,
        hosted_confirmation:
          completion.type === "hosted_confirmation" ? { custom_message: null } : null,
        redirect: completion.type === "redirect" ? { return_url: redirect!.return_url } : null,
      },
      subscription_cancel:
        type === "subscription_cancel"
          ? { retention: null, subscription: subscriptionOf("subscription_cancel") }
          : null,
      subscription_update:
        type === "subscription_update"
          ? { subscription: subscriptionOf("subscription_update") }
          : null,
      subscription_update_confirm: null,
    };
  }

  /** The customer's invoices, newest first (Stripe's list object and `starting_after`). */
  private listInvoices(params: Json): Json {
    const limit = listLimit(params);
    if (typeof params.customer === "string") this.requireCustomer(params.customer);
    const subscriptionId = params.subscription;
    const all = [...this.invoices.values()]
      .map((invoice, index) => ({ invoice, index }))
      .filter(
        ({ invoice }) =>
          subscriptionId === undefined || invoiceSubscriptionOf(invoice) === subscriptionId,
      );
    all.sort((a, b) => Number(b.invoice.created) - Number(a.invoice.created) || b.index - a.index);
    const matching = pageAfter(
      all.map(({ invoice }) => invoice),
      params,
      "invoice",
    );
    return {
      object: "list",
      data: matching.slice(0, limit),
      has_more: matching.length > limit,
      url: "/v1/invoices",
    };
  }

  /** The payments of paid invoices (one per charge an invoice left behind), newest first. */
  private listInvoicePayments(params: Json): Json {
    const limit = listLimit(params);
    const statuses: unknown[] = ["open", "paid", "canceled"];
    if (params.status !== undefined && !statuses.includes(params.status)) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "Invalid status: must be one of open, paid, or canceled",
        "parameter_invalid_string",
        "status",
      );
    }
    const payments = [...this.charges.values()]
      .filter((charge) => params.invoice === undefined || charge.invoice === params.invoice)
      .reverse()
      .map((charge) =>
        invoicePaymentObject({
          invoiceId: charge.invoice as string,
          chargeId: charge.id as string,
          paymentIntent: (charge.payment_intent as string | null) ?? null,
          amount: charge.amount as number,
          currency: charge.currency as string,
          created: charge.created as number,
        }),
      );
    const matching = pageAfter(payments, params, "invoice_payment");
    return {
      object: "list",
      data: matching.slice(0, limit),
      has_more: matching.length > limit,
      url: "/v1/invoice_payments",
    };
  }

  /** A refund of a charge (named directly or by its PaymentIntent), in full unless `amount`. */
  private createRefund(params: Json): Json {
    const chargeId = typeof params.charge === "string" ? params.charge : null;
    const intentId = typeof params.payment_intent === "string" ? params.payment_intent : null;
    if (!chargeId && !intentId) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "One of `charge` or `payment_intent` is required.",
        "parameter_missing",
      );
    }
    const charge = chargeId
      ? this.charges.get(chargeId)
      : [...this.charges.values()].find((candidate) => candidate.payment_intent === intentId);
    if (!charge) {
      throw chargeId
        ? missing("charge", chargeId, "charge")
        : missing("payment_intent", intentId!, "payment_intent");
    }
    const disputed = [...this.disputes.values()].some(
      (dispute) =>
        dispute.charge === charge.id && !["won", "lost"].includes(String(dispute.status)),
    );
    if (disputed) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `Charge ${String(charge.id)} has been charged back; you cannot issue a refund.`,
        "charge_disputed",
      );
    }
    const remaining = Number(charge.amount) - Number(charge.amount_refunded);
    if (remaining <= 0) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `Charge ${String(charge.id)} has already been refunded.`,
        "charge_already_refunded",
      );
    }
    const amount = params.amount === undefined ? remaining : Number(params.amount);
    if (!Number.isInteger(amount) || amount < 1 || amount > remaining) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `Refund amount ($${(amount / 100).toFixed(2)}) is greater than unrefunded amount on charge ($${(remaining / 100).toFixed(2)})`,
        "amount_too_large",
        "amount",
      );
    }
    charge.amount_refunded = Number(charge.amount_refunded) + amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    const refund = refundObject({
      id: stripeId("re"),
      charge: charge.id as string,
      paymentIntent: (charge.payment_intent as string | null) ?? null,
      amount,
      currency: charge.currency as string,
      created: this.seconds(),
      metadata: (params.metadata as Json | undefined) ?? {},
      reason: typeof params.reason === "string" ? params.reason : null,
    });
    this.refunds.set(refund.id as string, refund);
    this.emit("charge.refunded", publicCharge(charge));
    return refund;
  }

  /**
   * The next invoice: the new price for a full period, plus (with create_prorations) the
   * difference to the current price for the rest of the current period.
   */
  private previewInvoice(params: Json): Json {
    const customerId = typeof params.customer === "string" ? params.customer : null;
    if (customerId && !this.customers.has(customerId))
      throw missing("customer", customerId, "customer");
    if (!customerId && !params.customer_details && !params.subscription) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "Missing required param: customer.",
        "parameter_missing",
        "customer",
      );
    }
    const details = (params.subscription_details as Json | undefined) ?? {};
    const change = ((details.items as Json[] | undefined) ?? [])[0];
    if (!change) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "Missing subscription_details[items].",
        "parameter_missing",
        "subscription_details[items]",
      );
    }
    const price = this.requirePrice(change.price, "subscription_details[items][0][price]");
    const now = this.seconds();
    let amount = Number(price.unit_amount);
    let periodEnd = now + 30 * DAY_S;
    if (typeof params.subscription === "string") {
      const subscription = this.requireSubscription(params.subscription);
      const item = (subscription.items as { data: Json[] }).data[0]!;
      const start = Number(item.current_period_start);
      const end = Number(item.current_period_end);
      periodEnd = end;
      if (details.proration_behavior === "create_prorations" && end > now) {
        const remaining = (end - now) / (end - start);
        amount += Math.round((amount - Number((item.price as Json).unit_amount)) * remaining);
      }
    }
    return {
      id: null,
      object: "invoice",
      amount_due: amount,
      amount_paid: 0,
      amount_remaining: amount,
      total: amount,
      subtotal: amount,
      currency: price.currency,
      customer: customerId,
      livemode: false,
      period_start: now,
      period_end: periodEnd,
      status: "draft",
    };
  }

  private createCustomer(params: Json): Json {
    const id = stripeId("cus");
    const customer: Json = {
      id,
      object: "customer",
      address: null,
      balance: 0,
      created: this.seconds(),
      currency: null,
      default_source: null,
      delinquent: false,
      description: params.description ?? null,
      email: params.email ?? null,
      invoice_prefix: id.slice(4, 12).toUpperCase(),
      invoice_settings: {
        custom_fields: null,
        default_payment_method: null,
        footer: null,
        rendering_options: null,
      },
      livemode: false,
      metadata: params.metadata ?? {},
      name: params.name ?? null,
      phone: null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: "none",
      test_clock: null,
    };
    this.customers.set(id, customer);
    return customer;
  }

  /**
   * Deletes a customer as Stripe does: its live subscriptions are canceled at once (each with
   * `customer.subscription.deleted`), then `customer.deleted`; the id is unknown to every other
   * call afterwards ("No such customer"), and a retrieve answers `{ id, deleted: true }`.
   */
  private deleteCustomer(id: string): Json {
    const customer = this.requireCustomer(id);
    for (const subscription of this.subscriptions.values()) {
      if (subscription.customer !== id) continue;
      if (["canceled", "incomplete_expired"].includes(subscription.status as string)) continue;
      this.cancelSubscription(subscription.id as string);
    }
    this.customers.delete(id);
    this.deletedCustomers.add(id);
    this.emit("customer.deleted", customer);
    return { id, object: "customer", deleted: true };
  }

  private requireCustomer(id: string): Json {
    const customer = this.customers.get(id);
    if (!customer) throw missing("customer", id, "customer");
    return customer;
  }

  private requirePrice(id: unknown, param: string): Json {
    const price = typeof id === "string" ? this.prices.get(id) : undefined;
    if (!price) throw missing("price", String(id), param);
    return price;
  }

  private requireSubscription(id: string): Json {
    const subscription = this.subscriptions.get(id);
    if (!subscription) throw missing("subscription", id, "id");
    return subscription;
  }

  private buildItem(subscriptionId: string, price: Json, quantity: number, period: Json): Json {
    return {
      id: stripeId("si"),
      object: "subscription_item",
      billing_thresholds: null,
      created: this.seconds(),
      current_period_start: period.start,
      current_period_end: period.end,
      discounts: [],
      metadata: {},
      plan: {
        id: price.id,
        object: "plan",
        active: true,
        amount: price.unit_amount,
        amount_decimal: price.unit_amount_decimal,
        billing_scheme: "per_unit",
        created: price.created,
        currency: price.currency,
        interval: "month",
        interval_count: 1,
        livemode: false,
        metadata: {},
        nickname: null,
        product: price.product,
        usage_type: "licensed",
      },
      price: structuredClone(price),
      quantity,
      subscription: subscriptionId,
      tax_rates: [],
    };
  }

  private createSubscription(params: Json): Json {
    const customerId = params.customer;
    if (typeof customerId !== "string" || !this.customers.has(customerId)) {
      throw missing("customer", String(customerId), "customer");
    }
    const items = (params.items as Json[] | undefined) ?? [];
    if (items.length === 0) {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "Missing required param: items.",
        "parameter_missing",
        "items",
      );
    }
    const id = stripeId("sub");
    const start = this.seconds();
    const trialDays = params.trial_period_days === undefined ? 0 : Number(params.trial_period_days);
    const trialEnd = trialDays > 0 ? start + trialDays * DAY_S : null;
    const period = { start, end: trialEnd ?? start + 30 * DAY_S };
    const defaultPaymentMethod =
      typeof params.default_payment_method === "string" ? params.default_payment_method : null;
    if (defaultPaymentMethod) this.requirePaymentMethod(defaultPaymentMethod);
    const subscription: Json = {
      id,
      object: "subscription",
      application: null,
      billing_cycle_anchor: start,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      collection_method: "charge_automatically",
      created: start,
      currency: "usd",
      customer: customerId,
      default_payment_method: defaultPaymentMethod,
      description: null,
      discounts: [],
      ended_at: null,
      items: {
        object: "list",
        data: items.map((item, index) =>
          this.buildItem(
            id,
            this.requirePrice(item.price, `items[${index}][price]`),
            Number(item.quantity ?? 1),
            period,
          ),
        ),
        has_more: false,
        total_count: items.length,
        url: `/v1/subscription_items?subscription=${id}`,
      },
      latest_invoice: null,
      livemode: false,
      metadata: params.metadata ?? {},
      pause_collection: null,
      start_date: start,
      status: trialEnd ? "trialing" : "active",
      test_clock: null,
      trial_end: trialEnd,
      trial_settings: {
        end_behavior: {
          missing_payment_method:
            ((params.trial_settings as Json | undefined)?.end_behavior as Json | undefined)
              ?.missing_payment_method ?? "create_invoice",
        },
      },
      trial_start: trialEnd ? start : null,
    };
    const isDeclined = !trialEnd && this.declinedFirstPayments.delete(customerId);
    if (isDeclined) subscription.status = "incomplete";
    this.subscriptions.set(id, subscription);
    this.emit("customer.subscription.created", subscription);
    if (isDeclined) {
      const failed = this.invoiceEvent("invoice.payment_failed", id, { created: start });
      const invoice = failed.data.object as unknown as Json;
      invoice.billing_reason = "subscription_create";
      invoice.next_payment_attempt = null;
      this.invoices.set(invoice.id as string, invoice);
      subscription.latest_invoice = invoice.id;
      this.events.push(failed);
    }
    return subscription;
  }

  private updateSubscription(id: string, params: Json): Json {
    const subscription = this.requireSubscription(id);
    if (subscription.status === "canceled") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        "A canceled subscription can only update its cancellation_details and metadata.",
      );
    }
    const previous: Json = {};
    const list = subscription.items as { data: Json[]; total_count: number };
    const firstPeriod = list.data[0];
    const period = {
      start: firstPeriod?.current_period_start ?? this.seconds(),
      end: firstPeriod?.current_period_end ?? this.seconds() + 30 * DAY_S,
    };
    const items = (params.items as Json[] | undefined) ?? [];
    if (items.length > 0) previous.items = structuredClone(subscription.items);
    items.forEach((change, index) => {
      if (typeof change.id === "string") {
        const existing = list.data.find((item) => item.id === change.id);
        if (!existing) throw missing("subscription_item", change.id, `items[${index}][id]`);
        if (change.deleted === "true") {
          list.data = list.data.filter((item) => item !== existing);
          return;
        }
        if (change.price) {
          const price = this.requirePrice(change.price, `items[${index}][price]`);
          existing.price = structuredClone(price);
          (existing.plan as Json).id = price.id;
          (existing.plan as Json).amount = price.unit_amount;
        }
        if (change.quantity) existing.quantity = Number(change.quantity);
      } else {
        list.data.push(
          this.buildItem(
            id,
            this.requirePrice(change.price, `items[${index}][price]`),
            Number(change.quantity ?? 1),
            period,
          ),
        );
      }
    });
    list.total_count = list.data.length;
    if (params.cancel_at_period_end !== undefined) {
      previous.cancel_at_period_end = subscription.cancel_at_period_end;
      const flag = params.cancel_at_period_end === "true";
      subscription.cancel_at_period_end = flag;
      subscription.cancel_at = flag ? period.end : null;
    }
    if (params.metadata) {
      previous.metadata = subscription.metadata;
      subscription.metadata = { ...(subscription.metadata as Json), ...(params.metadata as Json) };
    }
    this.emit("customer.subscription.updated", subscription, previous);
    return subscription;
  }

  private cancelSubscription(id: string): Json {
    const subscription = this.requireSubscription(id);
    if (subscription.status === "canceled") {
      throw new StripeApiError(
        400,
        "invalid_request_error",
        `No such subscription: '${id}'`,
        "resource_missing",
        "id",
      );
    }
    const now = this.seconds();
    subscription.status = "canceled";
    subscription.canceled_at = now;
    subscription.ended_at = now;
    this.emit("customer.subscription.deleted", subscription);
    return subscription;
  }
}

/** A charge as Stripe answers it (the fake keeps its invoice beside it). */
function publicCharge(charge: Json): Json {
  const { invoice: _invoice, ...rest } = charge;
  return rest;
}

function matches(rule: Pick<FailureRule, "method" | "path">, method: string, path: string) {
  return (
    (!rule.method || rule.method.toUpperCase() === method) &&
    (!rule.path ||
      (typeof rule.path === "string" ? path.includes(rule.path) : rule.path.test(path)))
  );
}

function errorAnswer(error: StripeApiError): Answer {
  return {
    status: error.status,
    body: {
      error: {
        type: error.type,
        message: error.message,
        ...(error.code ? { code: error.code } : {}),
        ...(error.param ? { param: error.param } : {}),
      },
    },
  };
}

function failureAnswer(rule: FailureRule): Answer {
  return errorAnswer(
    new StripeApiError(
      rule.status ?? 500,
      rule.type ?? "api_error",
      rule.message ?? "Something went wrong on Stripe's end (programmed failure).",
    ),
  );
}

/** A list call's `limit` (default 10), refused outside 1..100 as Stripe does. */
function listLimit(params: Json): number {
  const limit = params.limit === undefined ? 10 : Number(params.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new StripeApiError(
      400,
      "invalid_request_error",
      "Invalid integer: limit must be between 1 and 100.",
      "parameter_invalid_integer",
      "limit",
    );
  }
  return limit;
}

/**
 * The items of a newest-first list that match the `customer` and `status` filters and come
 * after `starting_after` (an unknown id is refused as Stripe does).
 */
function pageAfter<Item extends Json>(items: Item[], params: Json, resource: string): Item[] {
  const matching = items.filter(
    (item) =>
      (params.customer === undefined || item.customer === params.customer) &&
      (params.status === undefined || item.status === params.status),
  );
  if (typeof params.starting_after !== "string") return matching;
  const index = matching.findIndex((item) => item.id === params.starting_after);
  if (index < 0) throw missing(resource, params.starting_after, "starting_after");
  return matching.slice(index + 1);
}

/** The subscription an invoice bills (`parent.subscription_details.subscription`). */
function invoiceSubscriptionOf(invoice: Json): string {
  const parent = invoice.parent as { subscription_details?: { subscription?: string } } | null;
  const subscriptionId = parent?.subscription_details?.subscription;
  if (!subscriptionId) throw new Error(`invoice ${String(invoice.id)} bills no subscription`);
  return subscriptionId;
}

function missing(resource: string, id: string, param: string): StripeApiError {
  return new StripeApiError(
    400,
    "invalid_request_error",
    `No such ${resource}: '${id}'`,
    "resource_missing",
    param,
  );
}

function notFoundRoute(method: string, path: string): StripeApiError {
  return new StripeApiError(
    404,
    "invalid_request_error",
    `Unrecognized request URL (${method}: ${path}).`,
  );
}

/** A signed delivery of `event`: the raw payload and its `stripe-signature` header. */
export function signStripeEvent(
  event: Stripe.Event,
  secret: string,
): { payload: string; header: string } {
  const payload = JSON.stringify(event);
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
  return { payload, header };
}
