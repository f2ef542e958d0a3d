import { uniqueSuffix } from "@zigznote/database/testing";
import type { Express } from "express";
import type Stripe from "stripe";
import request from "supertest";
import { runJob } from "../../src/jobs";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { deliverClerkEvent } from "../support/clerkEvents";
import type { TestApp } from "../support/helpers";
import { shuffled } from "../support/shuffled";
import { stripeHeaders } from "../support/webhookSigning";

/**
 * Clerk's `organization.deleted` and the organization's Checkout Sessions: the sessions still
 * open are expired at Stripe (after the commit, retried by the job), and a checkout paid anyway
 * (before the expiry reached Stripe) has its subscription canceled and its payment refunded in
 * full, exactly once, whatever the order, repetition and instance of Stripe's events. Stripe is
 * the local fake reached by the real `stripe` SDK; events are signed and verified.
 */

let a: BillingTestApp;
/** A second instance of the same deployment: same database, Stripe and secrets. */
let second: TestApp;

beforeAll(async () => {
  // One attempt per call, so that a Stripe failure reaches the queue's own retries.
  a = await createBillingTestApp({ env: { STRIPE_MAX_NETWORK_RETRIES: "0" } });
  second = a.anotherInstance();
});
afterAll(async () => {
  await settle();
  await second.close();
  await a.close();
});

const db = () => a.testApp.ctx.db;

async function settle(): Promise<void> {
  for (const ctx of [a.testApp.ctx, second.ctx]) {
    await ctx.webhooks.idle();
    await ctx.providerCalls.idle();
    await ctx.notices.idle();
  }
}

function runRetryJob(app: TestApp) {
  const job = app.ctx.jobs.find((candidate) => candidate.name === "retryProviderCalls")!;
  return runJob(app.ctx, job, { scheduledFor: app.ctx.clock.now(), instanceId: "test" });
}

function organizationDeleted(orgClerkId: string) {
  return {
    type: "organization.deleted",
    data: { id: orgClerkId, object: "organization", deleted: true },
    timestamp: a.clock.now().getTime(),
    msgId: `msg_${uniqueSuffix()}`,
  };
}

/** Clerk deletes the organization: the event delivered on both instances at once, and again. */
async function deleteOrganization(orgClerkId: string): Promise<void> {
  const event = organizationDeleted(orgClerkId);
  const deliveries = await Promise.all([
    deliverClerkEvent(a.testApp.app, a.clerkWebhookSecret, event),
    deliverClerkEvent(second.app, a.clerkWebhookSecret, event),
  ]);
  for (const delivery of deliveries) expect([200, 409]).toContain(delivery.status);
  expect((await deliverClerkEvent(second.app, a.clerkWebhookSecret, event)).status).toBe(200);
  await settle();
}

function postStripeEvent(app: Express, event: Stripe.Event) {
  const body = JSON.stringify(event);
  return request(app)
    .post("/webhooks/stripe")
    .set(stripeHeaders(a.stripeWebhookSecret, body))
    .send(body);
}

/** An admin of a new organization (free plan) with an open Checkout Session for pro. */
async function organizationInCheckout(): Promise<{
  admin: AuthenticatedCaller;
  sessionId: string;
}> {
  const admin = await authHeaderFor(a.testApp, { role: "admin" });
  const started = await request(a.testApp.app)
    .post("/api/v1/billing/checkout")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(started.status).toBe(200);
  const url = new URL(started.body.url as string);
  return { admin, sessionId: url.pathname.split("/").at(-1)! };
}

/** Expiry requests of the session that Stripe executed (not replays). */
function expiries(sessionId: string) {
  return a.fake
    .requestsTo("POST", `/v1/checkout/sessions/${sessionId}/expire`)
    .filter((r) => !r.replayed);
}

function callsOf(organizationId: string) {
  return db().providerCall.findMany({ where: { organizationId }, orderBy: { kind: "asc" } });
}

describe("organization.deleted with Checkout Sessions", () => {
  it("expires the organization's open Checkout Session once, so nobody can pay it any more", async () => {
    const { admin, sessionId } = await organizationInCheckout();
    const customerId = a.fake.checkoutSessions.get(sessionId)!.customer as string;

    await deleteOrganization(admin.orgClerkId);
    await runRetryJob(second);
    await settle();

    expect(a.fake.checkoutSessions.get(sessionId)!.status).toBe("expired");
    expect(expiries(sessionId).map((r) => r.status)).toEqual([200]);
    expect(expiries(sessionId)[0]!.idempotencyKey).toBe(
      `zigznote:organization-deleted:${sessionId}:expire`,
    );
    expect(() => a.fake.completeCheckout(sessionId)).toThrow(/no open session/);
    const calls = await callsOf(admin.organizationId);
    expect(calls.map((call) => [call.kind, call.target, call.status, call.attempts])).toEqual([
      ["stripe.checkout_sessions.expire", customerId, "done", 1],
    ]);
    expect(calls[0]!.result).toBe("expired 1");
  });

  it("takes a session paid just before its expiry reached Stripe as done (not an error); its events cancel and refund it", async () => {
    const { admin, sessionId } = await organizationInCheckout();
    let paidEvents: Stripe.Event[] = [];
    a.fake.beforeNext({ method: "POST", path: `/v1/checkout/sessions/${sessionId}/expire` }, () => {
      paidEvents = a.fake.completeCheckout(sessionId);
    });

    await deleteOrganization(admin.orgClerkId);
    expect(expiries(sessionId).map((r) => r.status)).toEqual([400]);
    let calls = await callsOf(admin.organizationId);
    expect(calls.map((call) => [call.kind, call.status, call.attempts, call.result])).toEqual([
      ["stripe.checkout_sessions.expire", "done", 1, "expired 0; paid before the expiry 1"],
    ]);

    for (const event of paidEvents) {
      expect((await postStripeEvent(a.testApp.app, event)).status).toBe(200);
    }
    await settle();
    const subscriptionId = a.fake.checkoutSessions.get(sessionId)!.subscription as string;
    expect(a.fake.subscriptions.get(subscriptionId)!.status).toBe("canceled");
    calls = await callsOf(admin.organizationId);
    expect(calls.map((call) => [call.kind, call.status])).toEqual([
      ["stripe.checkout_sessions.expire", "done"],
      ["stripe.subscription.cancel", "done"],
      ["stripe.subscription.refund", "done"],
    ]);
    expect(calls[2]!.result).toMatch(/^refunded re_/);
  });

  it("retries the expiry after Stripe answers 500, with backoff, from either instance", async () => {
    const { admin, sessionId } = await organizationInCheckout();
    a.fake.failNext({ method: "POST", path: `/v1/checkout/sessions/${sessionId}/expire` });

    await deleteOrganization(admin.orgClerkId);
    expect(expiries(sessionId).map((r) => r.status)).toEqual([500]);
    expect(a.fake.checkoutSessions.get(sessionId)!.status).toBe("open");
    let [call] = await callsOf(admin.organizationId);
    expect([call!.kind, call!.status, call!.attempts]).toEqual([
      "stripe.checkout_sessions.expire",
      "pending",
      1,
    ]);
    expect(call!.lastError).not.toBeNull();

    // Not due before the backoff (30 s).
    await runRetryJob(a.testApp);
    expect(expiries(sessionId)).toHaveLength(1);
    a.clock.advance(31_000);
    await runRetryJob(second);
    await settle();
    expect(expiries(sessionId).map((r) => r.status)).toEqual([500, 200]);
    expect(a.fake.checkoutSessions.get(sessionId)!.status).toBe("expired");
    [call] = await callsOf(admin.organizationId);
    expect([call!.status, call!.attempts, call!.result]).toEqual(["done", 2, "expired 1"]);
  });

  it("expires a session created while the organization was being deleted (checkout in flight)", async () => {
    const admin = await authHeaderFor(a.testApp, { role: "admin" });
    const sessions = a.testApp.ctx.modules.billing.deps.deps.stripe!.checkout.sessions;
    const create = sessions.create.bind(sessions);
    // The deletion commits (and its expiry lists the open sessions) after the checkout checked
    // the organization, before Stripe created the session.
    const spy = jest.spyOn(sessions, "create").mockImplementationOnce(async (...args) => {
      await deleteOrganization(admin.orgClerkId);
      return create(...args);
    });
    try {
      const started = await request(a.testApp.app)
        .post("/api/v1/billing/checkout")
        .set(admin.headers)
        .send({ planSlug: "pro" });
      expect(started.status).toBe(404);
    } finally {
      spy.mockRestore();
    }
    const created = [...a.fake.checkoutSessions.values()].filter(
      (session) => session.client_reference_id === admin.organizationId,
    );
    expect(created.map((session) => session.status)).toEqual(["expired"]);
  });

  it.each([1, 2, 3])(
    "cancels and refunds in full, once, a checkout paid before the expiry reached Stripe: events delivered twice, at once on two instances, in any order (seed %i)",
    async (seed) => {
      const { admin, sessionId } = await organizationInCheckout();
      const notices = await db().notification.count({
        where: { organizationId: admin.organizationId },
      });
      // The member pays; Stripe's events have not reached us when Clerk deletes the organization.
      const paidEvents = a.fake.completeCheckout(sessionId, { email: `payer-${seed}@acme.test` });
      const subscriptionId = a.fake.checkoutSessions.get(sessionId)!.subscription as string;
      const invoiceId = paidEvents.find((event) => event.type === "invoice.paid")!.data.object.id;
      const charge = a.fake.chargeOf(invoiceId);
      await deleteOrganization(admin.orgClerkId);
      expect(expiries(sessionId)).toHaveLength(0);

      const events = shuffled(
        paidEvents.filter((event) =>
          ["checkout.session.completed", "customer.subscription.created", "invoice.paid"].includes(
            event.type,
          ),
        ),
        seed,
      );
      expect(events).toHaveLength(3);
      // Each event on both instances at once; then each again.
      const concurrent = await Promise.all(
        events.flatMap((event) => [
          postStripeEvent(a.testApp.app, event),
          postStripeEvent(second.app, event),
        ]),
      );
      for (const delivery of concurrent) expect([200, 409]).toContain(delivery.status);
      for (const event of shuffled(events, seed + 100)) {
        expect((await postStripeEvent(second.app, event)).status).toBe(200);
      }
      await settle();
      await runRetryJob(a.testApp);
      await settle();

      const cancels = a.fake
        .requestsTo("DELETE", `/v1/subscriptions/${subscriptionId}`)
        .filter((r) => !r.replayed);
      expect(cancels.map((r) => r.status)).toEqual([200]);
      expect(a.fake.subscriptions.get(subscriptionId)!.status).toBe("canceled");
      const refunds = [...a.fake.refunds.values()].filter((refund) => refund.charge === charge.id);
      expect(refunds).toHaveLength(1);
      expect(refunds[0]).toMatchObject({
        amount: 1900,
        status: "succeeded",
        payment_intent: charge.payment_intent,
        metadata: { organizationId: admin.organizationId, subscriptionId, invoiceId },
      });
      expect(a.fake.charges.get(charge.id as string)).toMatchObject({
        refunded: true,
        amount_refunded: 1900,
      });
      const refundRequests = a.fake
        .requestsTo("POST", "/v1/refunds")
        .filter((r) => r.params.payment_intent === charge.payment_intent);
      expect(refundRequests.map((r) => [r.status, r.idempotencyKey])).toEqual([
        [200, `zigznote:organization-deleted:${charge.payment_intent as string}:refund`],
      ]);
      const calls = await callsOf(admin.organizationId);
      expect(calls.map((call) => [call.kind, call.target, call.status, call.attempts])).toEqual([
        ["stripe.checkout_sessions.expire", charge.customer, "done", 1],
        ["stripe.subscription.cancel", subscriptionId, "done", 1],
        ["stripe.subscription.refund", subscriptionId, "done", 1],
      ]);
      expect(calls[2]!.result).toBe(`refunded ${refunds[0]!.id as string}`);

      // Stripe's event of the cancellation applies and starts nothing more.
      const deleted = a.eventsFor(subscriptionId).at(-1)!;
      expect(deleted.type).toBe("customer.subscription.deleted");
      expect((await postStripeEvent(a.testApp.app, deleted)).status).toBe(200);
      await settle();
      expect(
        await db().providerCall.count({ where: { organizationId: admin.organizationId } }),
      ).toBe(3);
      // Nobody of the deleted organization is told anything.
      expect(
        await db().notification.count({ where: { organizationId: admin.organizationId } }),
      ).toBe(notices);
    },
  );

  it("retries a refund Stripe answered 500, and never refunds twice", async () => {
    const { admin, sessionId } = await organizationInCheckout();
    const paidEvents = a.fake.completeCheckout(sessionId);
    const paid = paidEvents.find((event) => event.type === "invoice.paid")!;
    const charge = a.fake.chargeOf(paid.data.object.id);
    await deleteOrganization(admin.orgClerkId);
    a.fake.failNext({ method: "POST", path: "/v1/refunds" });

    // The payment arrives first, alone.
    expect((await postStripeEvent(a.testApp.app, paid)).status).toBe(200);
    await settle();
    const refundCall = async () =>
      (await callsOf(admin.organizationId)).find(
        (call) => call.kind === "stripe.subscription.refund",
      )!;
    expect([(await refundCall()).status, (await refundCall()).attempts]).toEqual(["pending", 1]);
    expect(charge.refunded).toBe(false);

    a.clock.advance(31_000);
    await runRetryJob(second);
    await settle();
    expect([(await refundCall()).status, (await refundCall()).attempts]).toEqual(["done", 2]);
    expect(
      a.fake
        .requestsTo("POST", "/v1/refunds")
        .filter((r) => r.params.payment_intent === charge.payment_intent)
        .map((r) => r.status),
    ).toEqual([500, 200]);
    expect(
      [...a.fake.refunds.values()].filter((refund) => refund.charge === charge.id),
    ).toHaveLength(1);

    // The rest of the events arrive later: nothing more.
    for (const event of paidEvents) {
      expect((await postStripeEvent(a.testApp.app, event)).status).toBe(200);
    }
    await settle();
    a.clock.advance(31_000);
    await runRetryJob(a.testApp);
    await settle();
    expect(
      [...a.fake.refunds.values()].filter((refund) => refund.charge === charge.id),
    ).toHaveLength(1);
  });
});
