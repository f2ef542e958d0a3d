import request from "supertest";
import type Stripe from "stripe";
import { suspendExpiredGracePeriods } from "../../src/billing";
import { BillingChangeResultSchema, CurrentSubscriptionSchema } from "../../src/billing/schemas";
import { authHeaderFor } from "../support/auth";
import { useBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { deliver as deliverEvents } from "./billingScenario";

/**
 * A subscription whose first payment never went through (Stripe's `incomplete`, then
 * `incomplete_expired` after 23 hours) was never paid for: it grants no plan, starts no grace
 * period and can never suspend the organization. Through the real routes and signed webhooks;
 * Stripe declines the first invoice as it does with `payment_behavior=allow_incomplete`.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

let b: BillingTestApp;
useBillingTestApp((app) => (b = app));

const api = () => request(b.testApp.app);

/** Posts each event, signed (200 each), and waits for what they queued. */
const deliver = (...events: Stripe.Event[]) => deliverEvents(b, ...events);

async function overview(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/organization").set(headers);
  expect(response.status).toBe(200);
  return response.body as { plan: { slug: string } };
}

async function writeStatus(headers: { Authorization: string }) {
  const response = await api()
    .post("/api/v1/api-keys")
    .set(headers)
    .send({ name: "probe", scopes: ["meetings:read"] });
  return response.status;
}

/** An admin whose organization tried to subscribe to pro with a card Stripe declines. */
async function declinedSubscribe() {
  const admin = await authHeaderFor(b.testApp, { role: "admin" });
  // The organization's Stripe customer, as a first visit to Checkout creates it.
  const checkout = await api()
    .post("/api/v1/billing/checkout")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(checkout.status).toBe(200);
  const organization = await b.testApp.ctx.db.organization.findUniqueOrThrow({
    where: { id: admin.organizationId },
  });
  b.fake.declineFirstPayment(organization.stripeCustomerId!);
  const subscribed = await api()
    .post("/api/v1/billing/subscription")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(subscribed.status).toBe(200);
  const result = BillingChangeResultSchema.parse(subscribed.body);
  expect(result.data).toMatchObject({ status: "incomplete" });
  expect(result.planSlug).toBe("free");
  return { admin, stripeSubscriptionId: result.data!.stripeSubscriptionId };
}

describe("a subscription whose first payment failed (incomplete)", () => {
  it("grants no plan, starts no grace period and sends no dunning notice when the first invoice fails", async () => {
    const { admin, stripeSubscriptionId } = await declinedSubscribe();
    const events = b.eventsFor(stripeSubscriptionId);
    const failed = b.fake.events.filter(
      (event) =>
        event.type === "invoice.payment_failed" &&
        JSON.stringify(event.data.object).includes(stripeSubscriptionId),
    );
    expect(failed).toHaveLength(1);
    await deliver(...events, ...failed);

    const current = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(CurrentSubscriptionSchema.parse(current.body).data).toMatchObject({
      status: "incomplete",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
    expect((await overview(admin.headers)).plan.slug).toBe("free");
    const dunning = await b.testApp.ctx.db.notification.findMany({
      where: {
        organizationId: admin.organizationId,
        type: { startsWith: "billing.payment_failed" },
      },
    });
    expect(dunning).toEqual([]);
  });

  it("never suspends the organization once Stripe expires the subscription (incomplete_expired)", async () => {
    const { admin, stripeSubscriptionId } = await declinedSubscribe();
    const failed = b.fake.events.filter(
      (event) =>
        event.type === "invoice.payment_failed" &&
        JSON.stringify(event.data.object).includes(stripeSubscriptionId),
    );
    await deliver(...b.eventsFor(stripeSubscriptionId), ...failed);

    b.clock.advance(DAY_MS);
    await deliver(b.fake.expireIncomplete(stripeSubscriptionId));
    const expired = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(CurrentSubscriptionSchema.parse(expired.body).data).toMatchObject({
      status: "incomplete_expired",
    });
    expect((await overview(admin.headers)).plan.slug).toBe("free");

    // Past the 7-day grace a real failure would have had: the hourly job suspends nothing.
    b.clock.advance(8 * DAY_MS);
    await suspendExpiredGracePeriods(
      { db: b.testApp.ctx.db, notices: b.testApp.ctx.notices },
      { now: b.clock.now() },
    );
    const fresh = await authHeaderFor(b.testApp, { organizationId: admin.organizationId });
    expect(await writeStatus(fresh.headers)).toBe(201);
    const row = await b.testApp.ctx.db.subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId },
    });
    expect(row.status).toBe("incomplete_expired");
  });

  it("turns active, with the plan, once the customer pays the first invoice", async () => {
    const { admin, stripeSubscriptionId } = await declinedSubscribe();
    const failed = b.fake.events.filter(
      (event) =>
        event.type === "invoice.payment_failed" &&
        JSON.stringify(event.data.object).includes(stripeSubscriptionId),
    );
    await deliver(...b.eventsFor(stripeSubscriptionId), ...failed);
    b.clock.advance(60_000);
    const invoiceId = (failed[0]!.data.object as { id: string }).id;
    const active = b.fake.setSubscriptionStatus(stripeSubscriptionId, "active");
    await deliver(b.fake.invoiceEvent("invoice.paid", stripeSubscriptionId, { invoiceId }), active);

    const current = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(CurrentSubscriptionSchema.parse(current.body).data).toMatchObject({
      status: "active",
      graceEndsAt: null,
    });
    expect((await overview(admin.headers)).plan.slug).toBe("pro");
  });
});
