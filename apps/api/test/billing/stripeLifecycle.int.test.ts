import request from "supertest";
import Stripe from "stripe";
import { createStripeClient } from "../../src/billing";
import { BillingChangeResultSchema, CurrentSubscriptionSchema } from "../../src/billing/schemas";
import { authHeaderFor } from "../support/auth";
import { useBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { deliver as deliverEvents } from "./billingScenario";

/**
 * Stripe as it really behaves over a subscription's life, seen through the real app: signed
 * events posted to `/webhooks/stripe`, the billing routes, Stripe replaced at its network edge.
 */

let b: BillingTestApp;
useBillingTestApp((app) => (b = app));

const api = () => request(b.testApp.app);

/** Stripe's dashboard (an operator acting at Stripe, not through our API). */
const dashboard = () => createStripeClient(b.fake.clientSettings());

/** Posts each event, signed (200 each), and waits for what they queued. */
const deliver = (...events: Stripe.Event[]) => deliverEvents(b, ...events);

async function planOf(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/organization").set(headers);
  expect(response.status).toBe(200);
  return (response.body as { plan: { slug: string } }).plan.slug;
}

async function currentSubscription(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/billing/subscription").set(headers);
  expect(response.status).toBe(200);
  return CurrentSubscriptionSchema.parse(response.body).data;
}

/** An admin whose organization is on pro through POST /billing/subscription, events applied. */
async function subscribedAdmin() {
  const admin = await authHeaderFor(b.testApp, { role: "admin" });
  const response = await api()
    .post("/api/v1/billing/subscription")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(response.status).toBe(200);
  const { stripeSubscriptionId } = BillingChangeResultSchema.parse(response.body).data!;
  await deliver(...b.eventsFor(stripeSubscriptionId));
  return { admin, stripeSubscriptionId };
}

describe("a subscription moved to a price no plan has (grandfathered, negotiated, rotated)", () => {
  it("still follows Stripe's events: the cancellation takes the organization back to free", async () => {
    const { admin, stripeSubscriptionId } = await subscribedAdmin();
    b.fake.addPrice({ id: `price_pro_legacy_${Date.now()}`, unitAmount: 1500 });
    const legacyPrice = [...b.fake.prices.keys()].at(-1)!;
    const stripe = dashboard();
    const remote = await stripe.subscriptions.retrieve(stripeSubscriptionId);
    b.clock.advance(2_000);
    await stripe.subscriptions.update(stripeSubscriptionId, {
      items: [{ id: remote.items.data[0]!.id, price: legacyPrice }],
      cancel_at_period_end: true,
    });
    b.clock.advance(2_000);
    await stripe.subscriptions.cancel(stripeSubscriptionId);
    const [updated, deleted] = b.eventsFor(stripeSubscriptionId).slice(-2);
    expect(updated!.type).toBe("customer.subscription.updated");
    expect(deleted!.type).toBe("customer.subscription.deleted");

    await deliver(updated!);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      planSlug: "pro",
      cancelAtPeriodEnd: true,
    });
    await deliver(deleted!);
    expect(await currentSubscription(admin.headers)).toMatchObject({ status: "canceled" });
    expect(await planOf(admin.headers)).toBe("free");
  });
});

describe("customer.deleted (the customer deleted in Stripe's dashboard)", () => {
  it("unlinks the customer: the organization goes back to free and can pay again with a new customer", async () => {
    const { admin, stripeSubscriptionId } = await subscribedAdmin();
    const organization = await b.testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    const deletedId = organization.stripeCustomerId!;
    const checkoutOfDeleted = b.fake.buildEvent("checkout.session.completed", {
      id: `cs_test_late_${Date.now()}`,
      object: "checkout.session",
      mode: "subscription",
      customer: deletedId,
      client_reference_id: admin.organizationId,
      metadata: { organizationId: admin.organizationId, planSlug: "pro" },
      customer_details: { email: null },
    });
    b.clock.advance(2_000);
    await dashboard().customers.del(deletedId);
    const events = b.fake.events.slice(-2);
    expect(events.map((event) => event.type)).toEqual([
      "customer.subscription.deleted",
      "customer.deleted",
    ]);
    await deliver(...events);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      stripeSubscriptionId,
      status: "canceled",
    });
    expect(await planOf(admin.headers)).toBe("free");

    // A late event of the deleted customer does not link it again.
    await deliver(checkoutOfDeleted);
    const unlinked = await b.testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(unlinked.stripeCustomerId).toBeNull();

    const checkout = await api()
      .post("/api/v1/billing/checkout")
      .set(admin.headers)
      .send({ planSlug: "pro" });
    expect(checkout.status).toBe(200);
    const relinked = await b.testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(relinked.stripeCustomerId).not.toBeNull();
    expect(relinked.stripeCustomerId).not.toBe(deletedId);
    expect(b.fake.customers.has(relinked.stripeCustomerId!)).toBe(true);
    const portal = await api().post("/api/v1/billing/portal").set(admin.headers).send({});
    expect(portal.status).toBe(200);
  });
});

describe("invoice.payment_failed and Stripe's retry schedule", () => {
  it("sends the final notice (with the suspension date) when Stripe will not retry (next_payment_attempt: null)", async () => {
    const { admin, stripeSubscriptionId } = await subscribedAdmin();
    const invoiceId = `in_retries_${Date.now()}`;
    const first = b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId, {
      invoiceId,
      attemptCount: 1,
    });
    expect((first.data.object as Stripe.Invoice).next_payment_attempt).not.toBeNull();
    b.clock.advance(3 * 24 * 60 * 60 * 1000);
    // The account's retry schedule ends here: Stripe says so with no next attempt.
    const last = b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId, {
      invoiceId,
      attemptCount: 2,
    });
    (last.data.object as { next_payment_attempt: number | null }).next_payment_attempt = null;
    await deliver(first, last);

    const notices = await b.testApp.ctx.db.notification.findMany({
      where: {
        organizationId: admin.organizationId,
        type: { startsWith: "billing.payment_failed" },
      },
      orderBy: { createdAt: "asc" },
    });
    const byType = (type: string) => notices.filter((notice) => notice.type === type);
    expect(byType("billing.payment_failed")).toHaveLength(1);
    const finals = byType("billing.payment_failed.final");
    expect(finals).toHaveLength(1);
    const current = await currentSubscription(admin.headers);
    expect(finals[0]!.payload).toMatchObject({
      attempt: 2,
      maxAttempts: 2,
      suspendsAt: current!.graceEndsAt,
    });
  });
});

describe("events rendered in an older API version (the webhook endpoint's, not the SDK's)", () => {
  it("reads the billing period from the subscription when its items carry none (before 2025-03-31)", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const checkout = await api()
      .post("/api/v1/billing/checkout")
      .set(admin.headers)
      .send({ planSlug: "pro" });
    expect(checkout.status).toBe(200);
    const organization = await b.testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    const created = await dashboard().subscriptions.create({
      customer: organization.stripeCustomerId!,
      items: [{ price: "price_test_pro" }],
      metadata: { organizationId: admin.organizationId, planSlug: "pro" },
    });
    const [event] = b.eventsFor(created.id);
    const legacy = event!.data.object as unknown as Record<string, unknown> & {
      items: { data: Record<string, unknown>[] };
    };
    const item = legacy.items.data[0]!;
    legacy.current_period_start = item.current_period_start;
    legacy.current_period_end = item.current_period_end;
    delete item.current_period_start;
    delete item.current_period_end;
    (event as unknown as { api_version: string }).api_version = "2024-06-20";
    await deliver(event!);

    expect(await currentSubscription(admin.headers)).toMatchObject({
      stripeSubscriptionId: created.id,
      planSlug: "pro",
      currentPeriodEnd: new Date(Number(legacy.current_period_end) * 1000).toISOString(),
    });
  });
});

describe("signatures as Stripe sends them", () => {
  const sign = (payload: string, secret: string, timestamp: number) =>
    Stripe.webhooks
      .generateTestHeaderString({ payload, secret, timestamp })
      .split(",")
      .find((part) => part.startsWith("v1="))!;

  it("accepts a delivery signed with several secrets (Stripe rolling the endpoint's secret)", async () => {
    const event = b.fake.buildEvent("customer.updated", { id: "cus_unknown", object: "customer" });
    const body = JSON.stringify(event);
    const timestamp = Math.floor(Date.now() / 1000);
    const header = `t=${timestamp},${sign(body, "whsec_rolled_out", timestamp)},${sign(body, b.stripeWebhookSecret, timestamp)}`;
    const response = await api()
      .post("/webhooks/stripe")
      .set({ "content-type": "application/json", "stripe-signature": header })
      .send(body);
    expect(response.status).toBe(200);
  });

  it("answers 400 (not 500) to a signed body that is not an event, storing nothing", async () => {
    for (const body of ["null", "[]", '"evt"', "{}"]) {
      const timestamp = Math.floor(Date.now() / 1000);
      const header = `t=${timestamp},${sign(body, b.stripeWebhookSecret, timestamp)}`;
      const response = await api()
        .post("/webhooks/stripe")
        .set({ "content-type": "application/json", "stripe-signature": header })
        .send(body);
      expect({ body, status: response.status }).toEqual({ body, status: 400 });
      expect(response.body).toMatchObject({ error: { code: "INVALID_WEBHOOK_EVENT" } });
    }
  });
});
