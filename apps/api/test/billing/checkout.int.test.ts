import { createMeeting } from "@zigznote/database/testing";
import type Stripe from "stripe";
import request from "supertest";
import { PlanChangePreviewSchema } from "../../src/billing/schemas";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { shuffled } from "../support/shuffled";

const APP_URL = "https://app.zigznote.test";

let b: BillingTestApp;
beforeAll(async () => {
  b = await createBillingTestApp({ env: { APP_URL } });
});
afterAll(() => b.close());

const api = () => request(b.testApp.app);
const db = () => b.testApp.ctx.db;

async function checkout(caller: AuthenticatedCaller, planSlug = "pro") {
  return api().post("/api/v1/billing/checkout").set(caller.headers).send({ planSlug });
}

/** The Checkout Session the fake created for the URL the API answered. */
function sessionOf(url: string) {
  const id = url.split("/").pop()!;
  const session = b.fake.checkoutSessions.get(id);
  if (!session) throw new Error(`no session behind ${url}`);
  return session;
}

/**
 * Delivers `events` in the given order as Stripe would: an event answered with an error is
 * delivered again later (after the others), until every one was accepted.
 */
async function deliverAsStripe(events: Stripe.Event[]) {
  let pending = events;
  for (let round = 0; round < events.length + 1 && pending.length > 0; round += 1) {
    const retry: Stripe.Event[] = [];
    for (const event of pending) {
      const response = await b.postStripeEvent(event);
      if (response.status !== 200) retry.push(event);
    }
    pending = retry;
  }
  expect(pending.map((event) => event.type)).toEqual([]);
}

describe("POST /api/v1/billing/checkout", () => {
  it("creates a subscription-mode Checkout Session for the organization's customer, created once and reused", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const customersBefore = b.fake.requestsTo("POST", "/v1/customers").length;

    const first = await checkout(admin);
    expect(first.status).toBe(200);
    const expiresAt = String(Math.floor((b.clock.now().getTime() + 60 * 60 * 1000) / 1000));
    expect(first.body.url).toMatch(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_test_/);
    const second = await checkout(admin, "business");
    expect(second.status).toBe(200);
    expect(second.body.url).not.toBe(first.body.url);

    const organization = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(organization.stripeCustomerId).toMatch(/^cus_/);
    expect(b.fake.requestsTo("POST", "/v1/customers").length - customersBefore).toBe(1);

    const sessions = b.fake
      .requestsTo("POST", "/v1/checkout/sessions")
      .filter((r) => r.params.client_reference_id === admin.organizationId);
    expect(sessions).toHaveLength(2);
    expect(sessions[0]!.params).toEqual({
      mode: "subscription",
      customer: organization.stripeCustomerId,
      client_reference_id: admin.organizationId,
      line_items: [{ price: "price_test_pro", quantity: "1" }],
      metadata: { organizationId: admin.organizationId, planSlug: "pro" },
      subscription_data: { metadata: { organizationId: admin.organizationId, planSlug: "pro" } },
      success_url: `${APP_URL}/settings/billing?checkout=success&session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${APP_URL}/settings/billing?checkout=canceled`,
      expires_at: expiresAt,
    });
    expect(sessions[1]!.params.customer).toBe(organization.stripeCustomerId);
    expect(sessions[1]!.params.line_items).toEqual([
      { price: "price_test_business", quantity: "1" },
    ]);
    expect(sessions[0]!.idempotencyKey).not.toBe(sessions[1]!.idempotencyKey);
    // Nothing is recorded until Stripe says the customer paid.
    expect(await db().subscription.count({ where: { organizationId: admin.organizationId } })).toBe(
      0,
    );
  });

  it("answers 409 SUBSCRIPTION_EXISTS when the organization already has a live subscription", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const subscribed = await api()
      .post("/api/v1/billing/subscription")
      .set(admin.headers)
      .send({ planSlug: "pro" });
    expect(subscribed.status).toBe(200);
    const sessionsBefore = b.fake.requestsTo("POST", "/v1/checkout/sessions").length;

    const response = await checkout(admin, "business");
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe("SUBSCRIPTION_EXISTS");
    expect(response.body.error.message).toContain("POST /api/v1/billing/subscription");
    expect(b.fake.requestsTo("POST", "/v1/checkout/sessions").length).toBe(sessionsBefore);
  });

  it("refuses members (403) and the free plan (400 PLAN_NOT_PURCHASABLE)", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const member = await authHeaderFor(b.testApp, {
      role: "member",
      organizationId: admin.organizationId,
    });
    expect((await checkout(member)).status).toBe(403);
    const free = await checkout(admin, "free");
    expect(free.status).toBe(400);
    expect(free.body.error.code).toBe("PLAN_NOT_PURCHASABLE");
  });

  it("replaying checkout.session.completed and the subscription events shuffled 5 times gives one subscription", async () => {
    for (let seed = 1; seed <= 5; seed += 1) {
      const admin = await authHeaderFor(b.testApp, { role: "admin" });
      const started = await checkout(admin);
      const session = sessionOf(started.body.url as string);
      const billingEmail = `ap-${seed}-${admin.organizationId.slice(0, 8)}@acme.test`;
      const events = b.fake.completeCheckout(session.id as string, { email: billingEmail });
      b.clock.advance(1_000);
      const subscriptionId = session.subscription as string;
      events.push(b.fake.setSubscriptionStatus(subscriptionId, "active"));
      expect(events.map((event) => event.type).sort()).toEqual([
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "invoice.paid",
        "payment_method.attached",
      ]);

      await deliverAsStripe(shuffled(events, seed));
      // Stripe delivers at least once: everything again, in another order.
      await deliverAsStripe(shuffled(events, seed * 7919));

      const subscriptions = await db().subscription.findMany({
        where: { organizationId: admin.organizationId },
      });
      expect(subscriptions).toHaveLength(1);
      expect(subscriptions[0]).toMatchObject({
        stripeSubscriptionId: subscriptionId,
        planSlug: "pro",
        status: "active",
      });
      const organization = await db().organization.findUniqueOrThrow({
        where: { id: admin.organizationId },
      });
      expect(organization).toMatchObject({
        planSlug: "pro",
        stripeCustomerId: session.customer,
        billingEmail,
      });
    }
  });
});

describe("POST /api/v1/billing/portal", () => {
  it("opens a Customer Portal session for the organization's customer, returning to APP_URL", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const response = await api().post("/api/v1/billing/portal").set(admin.headers);
    expect(response.status).toBe(200);
    expect(response.body.url).toMatch(/^https:\/\/billing\.stripe\.test\/p\/session\/bps_/);
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    const [sent] = b.fake
      .requestsTo("POST", "/v1/billing_portal/sessions")
      .filter((r) => r.params.customer === organization.stripeCustomerId);
    expect(sent!.params).toEqual({
      customer: organization.stripeCustomerId,
      return_url: `${APP_URL}/settings/billing`,
    });
    const member = await authHeaderFor(b.testApp, {
      role: "member",
      organizationId: admin.organizationId,
    });
    expect((await api().post("/api/v1/billing/portal").set(member.headers)).status).toBe(403);
  });
});

describe("GET /api/v1/billing/preview", () => {
  /** A pro organization with 4 members and 12 meetings this month: over free's 3 and 10. */
  async function proOrganizationOverFree() {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    for (let i = 0; i < 3; i += 1) {
      await authHeaderFor(b.testApp, { role: "member", organizationId: admin.organizationId });
    }
    for (let i = 0; i < 12; i += 1) {
      await createMeeting(db(), { organizationId: admin.organizationId, createdAt: b.clock.now() });
    }
    const subscribed = await api()
      .post("/api/v1/billing/subscription")
      .set(admin.headers)
      .send({ planSlug: "pro" });
    expect(subscribed.status).toBe(200);
    return admin;
  }

  async function snapshot(organizationId: string) {
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: organizationId },
      select: { planSlug: true, planViolations: true, planViolationsAt: true },
    });
    const notices = await db().notification.count({ where: { organizationId } });
    const subscriptions = await db().subscription.findMany({ where: { organizationId } });
    return { organization, notices, subscriptions };
  }

  it("lists the violations a downgrade to free then records, and writes nothing", async () => {
    const admin = await proOrganizationOverFree();
    const before = await snapshot(admin.organizationId);
    expect(before.organization.planViolations).toEqual([]);

    const response = await api()
      .get("/api/v1/billing/preview?planSlug=free")
      .set(admin.headers)
      .expect(200);
    const preview = PlanChangePreviewSchema.parse(response.body);
    expect(preview).toMatchObject({
      planSlug: "free",
      currentPlanSlug: "pro",
      upcomingInvoice: null,
    });
    expect(preview.violations.map((v) => [v.type, v.limit, v.current, v.action])).toEqual([
      ["meetings", 10, 12, "read_only"],
      ["team_members", 3, 4, "notify_admin"],
    ]);
    expect(await snapshot(admin.organizationId)).toEqual(before);

    // The downgrade itself: the same violations, recorded.
    const canceled = await api()
      .post("/api/v1/billing/subscription/cancel")
      .set(admin.headers)
      .send({ atPeriodEnd: false });
    expect(canceled.status).toBe(200);
    const after = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(after.planSlug).toBe("free");
    expect(after.planViolations).toEqual(preview.violations);
  });

  it("includes Stripe's upcoming-invoice amount for paid plans, prorated for an upgrade", async () => {
    const fresh = await authHeaderFor(b.testApp, { role: "admin" });
    const first = await api()
      .get("/api/v1/billing/preview?planSlug=pro")
      .set(fresh.headers)
      .expect(200);
    expect(first.body.upcomingInvoice).toMatchObject({ amountDue: 1900, currency: "usd" });
    expect(first.body.violations).toEqual([]);

    const admin = await proOrganizationOverFree();
    const before = await snapshot(admin.organizationId);
    const previewsBefore = b.fake.requestsTo("POST", "/v1/invoices/create_preview").length;
    const upgrade = await api()
      .get("/api/v1/billing/preview?planSlug=business")
      .set(admin.headers)
      .expect(200);
    const [sent] = b.fake.requestsTo("POST", "/v1/invoices/create_preview").slice(previewsBefore);
    const live = before.subscriptions[0]!;
    expect(sent!.params).toMatchObject({
      subscription: live.stripeSubscriptionId,
      subscription_details: {
        items: [{ price: "price_test_business", quantity: "1" }],
        proration_behavior: "create_prorations",
      },
    });
    // A full business period plus the pro -> business difference for (almost) the whole period.
    expect(upgrade.body.upcomingInvoice.amountDue).toBeGreaterThan(4900);
    expect(upgrade.body.upcomingInvoice.amountDue).toBeLessThanOrEqual(4900 + 3000);
    expect(upgrade.body.violations).toEqual([]);
    expect(await snapshot(admin.organizationId)).toEqual(before);
  });

  it("answers 404 PLAN_NOT_FOUND for an unknown plan", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const response = await api().get("/api/v1/billing/preview?planSlug=gold").set(admin.headers);
    expect(response.status).toBe(404);
    expect(response.body.error.code).toBe("PLAN_NOT_FOUND");
  });
});

/** Polls `check` until it holds (after-commit work runs detached from the request). */
async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function customerOf(organizationId: string): Promise<string> {
  const organization = await db().organization.findUniqueOrThrow({
    where: { id: organizationId },
  });
  return organization.stripeCustomerId!;
}

interface SessionCall {
  kind: "create" | "expire";
  id: string;
}

/** The customer's Checkout Session calls the fake answered 200, in the order they were made. */
function sessionCalls(customerId: string): SessionCall[] {
  const ours = new Set(
    [...b.fake.checkoutSessions.values()]
      .filter((session) => session.customer === customerId)
      .map((session) => session.id as string),
  );
  return b.fake.requests
    .filter((r) => r.status === 200 && !r.replayed && r.path.startsWith("/v1/checkout/sessions"))
    .flatMap((r): SessionCall[] => {
      if (r.method === "POST" && r.path === "/v1/checkout/sessions") {
        const id = (r.response as { id: string }).id;
        return ours.has(id) ? [{ kind: "create", id }] : [];
      }
      const expired = /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/.exec(r.path)?.[1];
      if (r.method === "POST" && expired && ours.has(expired)) {
        return [{ kind: "expire", id: expired }];
      }
      return [];
    });
}

/** Replays the calls: no session was created while another one of the customer was open. */
function expectOneOpenAtATime(calls: SessionCall[]) {
  const open = new Set<string>();
  for (const call of calls) {
    if (call.kind === "create") {
      expect([...open]).toEqual([]);
      open.add(call.id);
    } else {
      expect(open.has(call.id)).toBe(true);
      open.delete(call.id);
    }
  }
  return open;
}

describe("POST /api/v1/billing/checkout: one payable session per organization", () => {
  it("a second checkout expires the first session before creating its own", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const first = await checkout(admin);
    expect(first.status).toBe(200);
    const firstSession = sessionOf(first.body.url as string);
    const second = await checkout(admin, "business");
    expect(second.status).toBe(200);

    expect(firstSession.status).toBe("expired");
    expect(sessionOf(second.body.url as string).status).toBe("open");
    const customerId = await customerOf(admin.organizationId);
    const listed = b.fake
      .requestsTo("GET", "/v1/checkout/sessions")
      .filter((r) => r.params.customer === customerId);
    expect(listed.map((r) => r.params)).toEqual([
      { customer: customerId, status: "open", limit: "100" },
      { customer: customerId, status: "open", limit: "100" },
    ]);
    const calls = sessionCalls(customerId);
    expect(calls).toEqual([
      { kind: "create", id: firstSession.id },
      { kind: "expire", id: firstSession.id },
      { kind: "create", id: sessionOf(second.body.url as string).id },
    ]);
    // Paying the expired page is impossible (Stripe shows it as expired).
    expect(() => b.fake.completeCheckout(firstSession.id as string)).toThrow(/no open session/);
  });

  it("10 concurrent checkouts: each gets 409 BILLING_CHANGE_IN_PROGRESS or a session created after every earlier one was expired; exactly one stays open", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    // Two rounds: the first races for the customer too, the second starts with a session open.
    const urls: string[] = [];
    for (let round = 0; round < 2; round += 1) {
      const responses = await Promise.all(Array.from({ length: 10 }, () => checkout(admin)));
      for (const response of responses) {
        if (response.status === 200) urls.push(response.body.url as string);
        else {
          expect(response.status).toBe(409);
          expect(response.body.error.code).toBe("BILLING_CHANGE_IN_PROGRESS");
        }
      }
    }
    expect(urls.length).toBeGreaterThanOrEqual(2);
    const customerId = await customerOf(admin.organizationId);
    const calls = sessionCalls(customerId);
    expect(calls.filter((call) => call.kind === "create")).toHaveLength(urls.length);
    const stillOpen = expectOneOpenAtATime(calls);
    const open = [...b.fake.checkoutSessions.values()].filter(
      (session) => session.customer === customerId && session.status === "open",
    );
    expect(open.map((session) => session.id)).toEqual([...stillOpen]);
    expect(open).toHaveLength(1);
    // The one left open is the last one created, and a caller was answered with it. (Not the
    // last of `urls`: those are in the order the requests were sent, not the order the lease
    // let them through.)
    const created = calls.filter((call) => call.kind === "create");
    expect(open[0]!.id).toBe(created.at(-1)!.id);
    expect(urls).toContain(open[0]!.url);
    // The lease is released: the next checkout goes through.
    expect((await checkout(admin)).status).toBe(200);
  });

  it("answers 409 SUBSCRIPTION_EXISTS when an open session is paid between the list and its expiry", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const first = await checkout(admin);
    const session = sessionOf(first.body.url as string);
    const sessionsBefore = b.fake.requestsTo("POST", "/v1/checkout/sessions").length;
    b.fake.beforeNext({ method: "POST", path: `/${String(session.id)}/expire` }, () => {
      b.fake.completeCheckout(session.id as string);
    });

    const second = await checkout(admin, "business");
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe("SUBSCRIPTION_EXISTS");
    expect(second.body.error.details).toEqual({ checkoutSessionId: session.id });
    // Stripe refused the expiry (400), we read the session back, and nothing new was created.
    const [expire] = b.fake.requestsTo("POST", `/${String(session.id)}/expire`);
    expect(expire!.status).toBe(400);
    expect(b.fake.requestsTo("GET", `/v1/checkout/sessions/${String(session.id)}`)).toHaveLength(1);
    expect(b.fake.requestsTo("POST", "/v1/checkout/sessions").length).toBe(sessionsBefore + 1);
    expect(session.status).toBe("complete");
  });
});

describe("a second live subscription of an organization (defence in depth)", () => {
  /** Two Checkout Sessions both paid at Stripe before any webhook arrived. */
  async function twoPaidCheckouts() {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const first = sessionOf((await checkout(admin, "pro")).body.url as string);
    // Paid in the instant before the second checkout could expire it.
    const firstEvents = b.fake.completeCheckout(first.id as string);
    const second = sessionOf((await checkout(admin, "business")).body.url as string);
    b.clock.advance(1_000);
    const secondEvents = b.fake.completeCheckout(second.id as string);
    return {
      admin,
      firstEvents,
      secondEvents,
      firstSubscription: first.subscription as string,
      secondSubscription: second.subscription as string,
    };
  }

  const cancelCalls = (subscriptionId: string) =>
    b.fake
      .requestsTo("DELETE", `/v1/subscriptions/${subscriptionId}`)
      .filter((r) => r.status === 200 && !r.replayed);

  const duplicateNotices = (organizationId: string) =>
    db().notification.findMany({
      where: { organizationId, type: "billing.duplicate_subscription_canceled" },
    });

  it("keeps the first recorded, records the second as canceled, cancels it at Stripe (prorated) once and tells the admins once", async () => {
    const { admin, firstEvents, secondEvents, firstSubscription, secondSubscription } =
      await twoPaidCheckouts();
    await deliverAsStripe(firstEvents);
    await deliverAsStripe(shuffled(secondEvents, 3));
    await eventually(() => cancelCalls(secondSubscription).length === 1);

    expect(cancelCalls(secondSubscription)[0]!.params).toEqual({
      prorate: "true",
      invoice_now: "true",
    });
    expect(cancelCalls(firstSubscription)).toHaveLength(0);
    expect(b.fake.subscriptions.get(secondSubscription)!.status).toBe("canceled");
    expect(b.fake.subscriptions.get(firstSubscription)!.status).toBe("active");

    // Stripe's own events of the cancel, and everything again in another order: nothing more.
    const deleted = b
      .eventsFor(secondSubscription)
      .filter((event) => event.type === "customer.subscription.deleted");
    expect(deleted).toHaveLength(1);
    await deliverAsStripe(shuffled([...firstEvents, ...secondEvents, ...deleted], 11));

    const rows = await db().subscription.findMany({
      where: { organizationId: admin.organizationId },
      orderBy: { createdAt: "asc" },
    });
    expect(rows.map((row) => [row.stripeSubscriptionId, row.planSlug, row.status])).toEqual([
      [firstSubscription, "pro", "active"],
      [secondSubscription, "business", "canceled"],
    ]);
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(organization.planSlug).toBe("pro");
    const notices = await duplicateNotices(admin.organizationId);
    expect(notices).toHaveLength(1);
    expect(notices[0]!.payload).toEqual({
      keptSubscriptionId: firstSubscription,
      keptPlanSlug: "pro",
      canceledSubscriptionId: secondSubscription,
      canceledPlanSlug: "business",
    });
    expect(cancelCalls(secondSubscription)).toHaveLength(1);
  });

  it("both subscriptions' events delivered at once: exactly one is kept and the other canceled", async () => {
    const { admin, firstEvents, secondEvents, firstSubscription, secondSubscription } =
      await twoPaidCheckouts();
    await Promise.all([
      deliverAsStripe(shuffled(firstEvents, 5)),
      deliverAsStripe(shuffled(secondEvents, 6)),
    ]);
    await eventually(
      () => cancelCalls(firstSubscription).length + cancelCalls(secondSubscription).length === 1,
    );
    const live = await db().subscription.findMany({
      where: { organizationId: admin.organizationId, status: { not: "canceled" } },
    });
    expect(live).toHaveLength(1);
    const kept = live[0]!.stripeSubscriptionId;
    const dropped = kept === firstSubscription ? secondSubscription : firstSubscription;
    expect(cancelCalls(dropped)).toHaveLength(1);
    expect(cancelCalls(kept)).toHaveLength(0);
    expect(b.fake.subscriptions.get(kept)!.status).toBe("active");
    expect(b.fake.subscriptions.get(dropped)!.status).toBe("canceled");
    expect(await duplicateNotices(admin.organizationId)).toHaveLength(1);
  });

  it("a cancel that did not reach Stripe is sent again when a newer event shows the duplicate still live", async () => {
    const { firstEvents, secondEvents, secondSubscription } = await twoPaidCheckouts();
    await deliverAsStripe(firstEvents);
    // Every attempt of the SDK (1 + 2 retries) fails.
    b.fake.failNext({
      method: "DELETE",
      path: `/v1/subscriptions/${secondSubscription}`,
      times: 3,
    });
    await deliverAsStripe(secondEvents);
    await eventually(
      () => b.fake.requestsTo("DELETE", `/v1/subscriptions/${secondSubscription}`).length === 3,
    );
    expect(b.fake.subscriptions.get(secondSubscription)!.status).toBe("active");

    b.clock.advance(2_000);
    await deliverAsStripe([b.fake.setSubscriptionStatus(secondSubscription, "active")]);
    await eventually(() => cancelCalls(secondSubscription).length === 1);
    expect(b.fake.subscriptions.get(secondSubscription)!.status).toBe("canceled");
  });
});
