/**
 * A local HTTP server speaking the parts of Stripe's REST API (v1) that zigznote uses, so the
 * real `stripe` SDK runs in tests against it (point the SDK at `fake.clientSettings()`).
 *
 * Speaks:
 *   POST   /v1/customers                    create (name, email, metadata)
 *   GET    /v1/customers/:id                retrieve
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
 *   POST   /v1/billing_portal/sessions      create (customer, return_url)
 *   POST   /v1/invoices/create_preview      the next invoice (customer|customer_details,
 *                                           subscription?, subscription_details[items|proration_behavior])
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
 *   fake.invoiceEvent(type, subscriptionId, { amountDue?, attemptCount?, created? })
 *                            an invoice.* event for the subscription (invoice.parent.subscription_details)
 *   fake.completeCheckout(sessionId, { email? })   pays an open Checkout Session as the hosted
 *                            page would: creates the subscription (customer.subscription.created),
 *                            completes the session (checkout.session.completed), pays the first
 *                            invoice (invoice.paid); returns those events in Stripe's order
 *   fake.checkoutSessions    Checkout Sessions by id
 *   fake.setNow(fn)          the clock used for `created` and periods (default: Date.now)
 *   signStripeEvent(event, secret)   payload + `stripe-signature` header (the SDK's test helper)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isDeepStrictEqual } from "node:util";
import qs from "qs";
import Stripe from "stripe";

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
  readonly events: Stripe.Event[] = [];
  private readonly idempotent = new Map<string, StoredResponse>();
  private readonly failures: (FailureRule & { remaining: number })[] = [];
  private readonly interceptions: { rule: FailureRule; action: () => void }[] = [];
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
    type: "invoice.payment_failed" | "invoice.paid" | "invoice.payment_succeeded",
    subscriptionId: string,
    options: { amountDue?: number; attemptCount?: number; created?: number } = {},
  ): Stripe.Event {
    const subscription = this.subscriptions.get(subscriptionId);
    const customer = (subscription?.customer as string | undefined) ?? null;
    const failed = type === "invoice.payment_failed";
    const amount = options.amountDue ?? 1900;
    const now = options.created ?? this.seconds();
    const id = stripeId("in");
    const invoice: Json = {
      id,
      object: "invoice",
      amount_due: amount,
      amount_paid: failed ? 0 : amount,
      amount_remaining: failed ? amount : 0,
      attempt_count: options.attemptCount ?? 1,
      attempted: true,
      billing_reason: "subscription_cycle",
      collection_method: "charge_automatically",
      created: now,
      currency: "usd",
      customer,
      customer_email: customer ? (this.customers.get(customer)?.email ?? null) : null,
      hosted_invoice_url: `https://invoice.stripe.test/${id}`,
      lines: { object: "list", data: [], has_more: false, url: `/v1/invoices/${id}/lines` },
      livemode: false,
      metadata: {},
      next_payment_attempt: failed ? now + 3 * DAY_S : null,
      parent: {
        type: "subscription_details",
        quote_details: null,
        subscription_details: { metadata: {}, subscription: subscriptionId },
      },
      period_start: now - 30 * DAY_S,
      period_end: now,
      status: failed ? "open" : "paid",
    };
    return this.buildEvent(type, invoice, { created: now });
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
      if (method === "GET" && id) return this.requireCustomer(id);
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
    if (resource === "subscriptions") {
      if (method === "POST" && !id) return this.createSubscription(params);
      if (method === "GET" && id) return this.requireSubscription(id);
      if (method === "POST" && id) return this.updateSubscription(id, params);
      if (method === "DELETE" && id) return this.cancelSubscription(id);
    }
    throw notFoundRoute(method, path);
  }

  /** Pays an open Checkout Session as Stripe's hosted page would (see the header). */
  completeCheckout(sessionId: string, options: { email?: string } = {}): Stripe.Event[] {
    const session = this.checkoutSessions.get(sessionId) && this.requireSession(sessionId);
    if (!session || session.status !== "open") throw new Error(`no open session ${sessionId}`);
    const first = this.events.length;
    const customerId = session.customer as string;
    const customer = this.requireCustomer(customerId);
    // The e-mail typed on the page becomes the customer's (as Stripe keeps it).
    if (options.email) customer.email = options.email;
    const email = customer.email as string | null;
    const lineItems = (session.line_items as Json[]).map((item) => ({ ...item }));
    const subscription = this.createSubscription({
      customer: customerId,
      items: lineItems,
      metadata: (session.subscription_data as Json | undefined)?.metadata ?? {},
    });
    session.status = "complete";
    session.payment_status = "paid";
    session.subscription = subscription.id;
    session.customer_details = { email: email ?? null, name: null };
    this.emit("checkout.session.completed", this.publicSession(session));
    const paid = this.invoiceEvent("invoice.paid", subscription.id as string);
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
    const id = stripeId("cs_test");
    const session: Json = {
      id,
      object: "checkout.session",
      mode: "subscription",
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
    let matching = [...this.checkoutSessions.keys()]
      .reverse()
      .map((id) => this.requireSession(id))
      .filter(
        (session) =>
          (params.customer === undefined || session.customer === params.customer) &&
          (params.status === undefined || session.status === params.status),
      );
    if (typeof params.starting_after === "string") {
      const index = matching.findIndex((session) => session.id === params.starting_after);
      if (index < 0) throw missing("checkout.session", params.starting_after, "starting_after");
      matching = matching.slice(index + 1);
    }
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
    const id = stripeId("bps");
    return {
      id,
      object: "billing_portal.session",
      created: this.seconds(),
      customer: customerId,
      livemode: false,
      return_url: params.return_url ?? null,
      url: `https://billing.stripe.test/p/session/${id}`,
    };
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
    const period = { start, end: start + 30 * DAY_S };
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
      default_payment_method: null,
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
      status: "active",
      test_clock: null,
      trial_end: null,
      trial_start: null,
    };
    this.subscriptions.set(id, subscription);
    this.emit("customer.subscription.created", subscription);
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
