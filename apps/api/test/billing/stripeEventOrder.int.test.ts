import request from "supertest";
import type Stripe from "stripe";
import { suspendExpiredGracePeriods } from "../../src/billing";
import { BillingChangeResultSchema, CurrentSubscriptionSchema } from "../../src/billing/schemas";
import { authHeaderFor } from "../support/auth";
import { useBillingTestApp, type BillingTestApp } from "../support/billingHarness";

/**
 * Issue 11, defect 1: the subscription's status is written by subscription events and by invoice
 * outcomes; a late event of one kind must not undo a newer event of the other. Events go through
 * `POST /webhooks/stripe`, signed, with Stripe `created` times the test chooses.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

let b: BillingTestApp;
useBillingTestApp((app) => (b = app));

const api = () => request(b.testApp.app);

/**
 * Moves the clock past the 7-day grace period, runs the suspension job, and signs in again to
 * the organization (a fresh token sees its new status).
 */
async function callerAfterGraceEnds(organizationId: string) {
  b.clock.advance(8 * DAY_MS);
  await suspendExpiredGracePeriods(
    { db: b.testApp.ctx.db, notices: b.testApp.ctx.notices },
    { now: b.clock.now() },
  );
  return authHeaderFor(b.testApp, { organizationId });
}

/** An admin whose organization subscribed to pro at T0 (the clock's current second). */
async function subscribedAdmin() {
  const admin = await authHeaderFor(b.testApp, { role: "admin" });
  const response = await api()
    .post("/api/v1/billing/subscription")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(response.status).toBe(200);
  const { stripeSubscriptionId } = BillingChangeResultSchema.parse(response.body).data!;
  const t0 = Math.floor(b.clock.now().getTime() / 1000);

  /** `customer.subscription.updated` created at `created`, saying `status`. */
  const subscriptionUpdate = (status: string, created: number): Stripe.Event =>
    b.fake.buildEvent(
      "customer.subscription.updated",
      { ...b.fake.subscriptions.get(stripeSubscriptionId)!, status },
      { created },
    );
  const invoice = (type: "invoice.payment_failed" | "invoice.paid", created: number) =>
    b.fake.invoiceEvent(type, stripeSubscriptionId, { created });
  return { admin, t0, subscriptionUpdate, invoice };
}

async function deliver(event: Stripe.Event) {
  const response = await b.postStripeEvent(event);
  expect(response.status).toBe(200);
}

async function currentSubscription(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/billing/subscription").set(headers);
  expect(response.status).toBe(200);
  return CurrentSubscriptionSchema.parse(response.body).data!;
}

/** Status of a write (creating an API key goes through the billing write guard). */
async function writeStatus(headers: { Authorization: string }) {
  const response = await api()
    .post("/api/v1/api-keys")
    .set(headers)
    .send({ name: "probe", scopes: ["meetings:read"] });
  return response.status;
}

describe("POST /webhooks/stripe with subscription and invoice events out of order", () => {
  it("keeps a newer payment failure (grace, retry count) when an older `updated` (active) arrives late, and suspends when the grace ends", async () => {
    const { admin, t0, subscriptionUpdate, invoice } = await subscribedAdmin();
    const lateActive = subscriptionUpdate("active", t0 + 1);

    await deliver(invoice("invoice.payment_failed", t0 + 2));
    const failed = await currentSubscription(admin.headers);
    expect(failed).toMatchObject({ status: "past_due", paymentRetryCount: 1 });
    expect(failed.graceEndsAt).not.toBeNull();

    await deliver(lateActive);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
      graceEndsAt: failed.graceEndsAt,
    });

    // Stripe's own past_due update of the same second keeps the grace period's end.
    await deliver(subscriptionUpdate("past_due", t0 + 2));
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
      graceEndsAt: failed.graceEndsAt,
    });

    const fresh = await callerAfterGraceEnds(admin.organizationId);
    expect(await currentSubscription(fresh.headers)).toMatchObject({ status: "suspended" });
    expect(await writeStatus(fresh.headers)).toBe(402);
  });

  it("keeps a suspended organization suspended (402) when an older `updated` (active) arrives; only a payment lifts it", async () => {
    const { admin, t0, subscriptionUpdate, invoice } = await subscribedAdmin();
    const lateActive = subscriptionUpdate("active", t0 + 1);
    await deliver(invoice("invoice.payment_failed", t0 + 2));
    const fresh = await callerAfterGraceEnds(admin.organizationId);
    expect(await writeStatus(fresh.headers)).toBe(402);

    await deliver(lateActive);
    expect(await currentSubscription(fresh.headers)).toMatchObject({
      status: "suspended",
      paymentRetryCount: 1,
    });
    expect(await writeStatus(fresh.headers)).toBe(402);

    // A newer update saying active (no payment) does not lift it either.
    await deliver(subscriptionUpdate("active", t0 + 3));
    expect(await writeStatus(fresh.headers)).toBe(402);

    await deliver(invoice("invoice.paid", t0 + 4));
    expect(await currentSubscription(fresh.headers)).toMatchObject({
      status: "active",
      paymentRetryCount: 0,
      graceEndsAt: null,
    });
    expect(await writeStatus(fresh.headers)).toBe(201);
  });

  it("stays active with no grace when an `updated` (past_due) older than the payment arrives after it", async () => {
    const { admin, t0, subscriptionUpdate, invoice } = await subscribedAdmin();
    const latePastDue = subscriptionUpdate("past_due", t0 + 2);
    await deliver(invoice("invoice.payment_failed", t0 + 2));
    await deliver(invoice("invoice.paid", t0 + 3));
    expect(await currentSubscription(admin.headers)).toMatchObject({ status: "active" });

    await deliver(latePastDue);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "active",
      paymentRetryCount: 0,
      graceEndsAt: null,
      paymentFailedAt: null,
    });
  });

  it("starts the grace period on Stripe's past_due update when no failure event came, so the job can suspend", async () => {
    const { admin, t0, subscriptionUpdate } = await subscribedAdmin();
    await deliver(subscriptionUpdate("past_due", t0 + 2));
    const pastDue = await currentSubscription(admin.headers);
    expect(pastDue).toMatchObject({ status: "past_due", paymentRetryCount: 0 });
    expect(pastDue.graceEndsAt).toBe(new Date((t0 + 2) * 1000 + 7 * DAY_MS).toISOString());

    const fresh = await callerAfterGraceEnds(admin.organizationId);
    expect(await currentSubscription(fresh.headers)).toMatchObject({ status: "suspended" });
  });
});
