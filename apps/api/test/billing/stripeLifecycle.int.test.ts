import request from "supertest";
import type Stripe from "stripe";
import { createStripeClient } from "../../src/billing";
import { BillingChangeResultSchema, CurrentSubscriptionSchema } from "../../src/billing/schemas";
import { authHeaderFor } from "../support/auth";
import { useBillingTestApp, type BillingTestApp } from "../support/billingHarness";

/**
 * Stripe as it really behaves over a subscription's life, seen through the real app: signed
 * events posted to `/webhooks/stripe`, the billing routes, Stripe replaced at its network edge.
 */

let b: BillingTestApp;
useBillingTestApp((app) => (b = app));

const api = () => request(b.testApp.app);

/** Stripe's dashboard (an operator acting at Stripe, not through our API). */
const dashboard = () => createStripeClient(b.fake.clientSettings());

async function deliver(...events: Stripe.Event[]) {
  for (const event of events) {
    const response = await b.postStripeEvent(event);
    expect(response.status).toBe(200);
  }
  await b.testApp.ctx.webhooks.idle();
}

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
