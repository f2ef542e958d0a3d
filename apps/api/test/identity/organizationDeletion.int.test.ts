import { createMembership, createUser, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { createBot } from "../../src/bots";
import { runJob } from "../../src/jobs";
import { enqueueRecordingImport, processRecordingImport } from "../../src/recordings";
import { meetingBody, subscribedOrganization } from "../billing/billingScenario";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { deliverClerkEvent } from "../support/clerkEvents";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import type { TestApp } from "../support/helpers";
import { fakeRecallEnv } from "../support/recallApp";

/**
 * Clerk's `organization.deleted`: the organization's Stripe subscription is canceled and its
 * active Recall bots are sent home, exactly once across deliveries and instances, after the
 * event's transaction commits, retried until the provider answers. Stripe and Recall are the
 * local fakes speaking their APIs; Clerk's events are signed with the real `svix` SDK.
 */

let recall: FakeRecall;
let a: BillingTestApp;
/** A second instance of the same deployment: same database, Stripe, Recall and secrets. */
let second: TestApp;

beforeAll(async () => {
  recall = await startFakeRecall();
  const providerEnv = {
    ...fakeRecallEnv(recall),
    // One attempt per call, so that a provider failure reaches the queue's own retries.
    STRIPE_MAX_NETWORK_RETRIES: "0",
    RECALL_MAX_RETRIES: "0",
  };
  a = await createBillingTestApp({ env: providerEnv });
  second = a.anotherInstance();
});
afterAll(async () => {
  await settle();
  await second.close();
  await a.close();
  await recall.close();
});

const db = () => a.testApp.ctx.db;

/** Waits for what the deliveries started after their commits, on both instances. */
async function settle(): Promise<void> {
  for (const ctx of [a.testApp.ctx, second.ctx]) {
    await ctx.webhooks.idle();
    await ctx.providerCalls.idle();
    await ctx.notices.idle();
  }
}

function organizationDeleted(orgClerkId: string, msgId = `msg_${uniqueSuffix()}`) {
  return {
    type: "organization.deleted",
    data: { id: orgClerkId, object: "organization", deleted: true },
    timestamp: a.clock.now().getTime(),
    msgId,
  };
}

/** Stripe's cancel requests for the subscription (executed or replayed). */
function cancelRequests(subscriptionId: string) {
  return a.fake.requests.filter(
    (r) => r.method === "DELETE" && r.path === `/v1/subscriptions/${subscriptionId}`,
  );
}

/** The deletion's expiry of the customer's open Checkout Sessions (organizationDeletionCheckout). */
const EXPIRE_CALL = "stripe.checkout_sessions.expire";

function leaveRequests(recallBotId: string) {
  return recall.requestsTo("POST", `/api/v1/bot/${recallBotId}/leave_call/`);
}

/** Clerk deletes the organization: the event delivered once (200), and what it started settled. */
async function deleteOrganization(orgClerkId: string): Promise<void> {
  const delivered = await deliverClerkEvent(
    a.testApp.app,
    a.clerkWebhookSecret,
    organizationDeleted(orgClerkId),
  );
  expect(delivered.status).toBe(200);
  await settle();
}

/** A meeting of the organization, created through the API; its id. */
async function newMeeting(headers: { Authorization: string }): Promise<string> {
  const meeting = await request(a.testApp.app)
    .post("/api/v1/meetings")
    .set(headers)
    .send(meetingBody());
  expect(meeting.status).toBe(201);
  return meeting.body.id as string;
}

/** A meeting of the organization with a bot in the call (through the API); its Recall id. */
async function meetingWithBot(headers: { Authorization: string }): Promise<string> {
  const meetingId = await newMeeting(headers);
  const bot = await request(a.testApp.app)
    .post(`/api/v1/meetings/${meetingId}/bot`)
    .set(headers)
    .send({});
  expect(bot.status).toBe(201);
  const row = await db().bot.findUniqueOrThrow({ where: { id: bot.body.id as string } });
  return row.recallBotId!;
}

/** The statuses Recall has for the bot: a `call_ended` is added by each leave it acted on. */
function recallStatuses(recallBotId: string): string[] {
  return recall.bots.get(recallBotId)!.status_changes.map((change) => change.code);
}

function runRetryJob(app: TestApp) {
  const job = app.ctx.jobs.find((candidate) => candidate.name === "retryProviderCalls")!;
  return runJob(app.ctx, job, { scheduledFor: app.ctx.clock.now(), instanceId: "test" });
}

describe("Clerk organization.deleted", () => {
  it("cancels the subscription and sends the bots home once, delivered twice and on two instances at once; Stripe's deletion event then applies without telling anyone", async () => {
    const org = await subscribedOrganization(a);
    const { admin, stripeSubscriptionId } = org;
    const botIds = [await meetingWithBot(admin.headers), await meetingWithBot(admin.headers)];
    // More members than the free plan allows: once the plan ends, a live organization's admins
    // would be told of the violation.
    for (let i = 0; i < 3; i += 1) {
      const user = await createUser(db());
      await createMembership(db(), { organizationId: org.organizationId, userId: user.id });
    }
    const noticesBefore = await db().notification.count({
      where: { organizationId: org.organizationId },
    });

    const event = organizationDeleted(admin.orgClerkId);
    // The same message on both instances at once, and again later; and Clerk sending the
    // deletion a second time as a new message.
    const deliveries = await Promise.all([
      deliverClerkEvent(a.testApp.app, a.clerkWebhookSecret, event),
      deliverClerkEvent(second.app, a.clerkWebhookSecret, event),
      deliverClerkEvent(second.app, a.clerkWebhookSecret, organizationDeleted(admin.orgClerkId)),
    ]);
    for (const delivery of deliveries) expect([200, 409]).toContain(delivery.status);
    expect((await deliverClerkEvent(a.testApp.app, a.clerkWebhookSecret, event)).status).toBe(200);
    await settle();
    // A job pass on either instance finds nothing left to do.
    await runRetryJob(second);
    await settle();

    const organization = await db().organization.findUniqueOrThrow({
      where: { id: org.organizationId },
    });
    expect(organization.status).toBe("deleted");
    expect(cancelRequests(stripeSubscriptionId)).toHaveLength(1);
    expect(cancelRequests(stripeSubscriptionId)[0]!).toMatchObject({
      status: 200,
      params: { prorate: "false", invoice_now: "false" },
    });
    expect(a.fake.subscriptions.get(stripeSubscriptionId)!.status).toBe("canceled");
    for (const recallBotId of botIds) {
      expect(leaveRequests(recallBotId)).toHaveLength(1);
      expect(recallStatuses(recallBotId)).toEqual(["ready", "call_ended"]);
    }
    const calls = await db().providerCall.findMany({
      where: { organizationId: org.organizationId },
    });
    expect(calls).toHaveLength(4);
    expect(
      calls.map((call) => [call.kind, call.status, call.attempts, call.result]).sort(),
    ).toEqual([
      ["recall.bot.leave", "done", 1, "left"],
      ["recall.bot.leave", "done", 1, "left"],
      // Its customer had no Checkout Session open.
      ["stripe.checkout_sessions.expire", "done", 1, "expired 0"],
      ["stripe.subscription.cancel", "done", 1, "canceled"],
    ]);
    // The bots' end is recorded from Recall's answer.
    const bots = await db().bot.findMany({ where: { organizationId: org.organizationId } });
    expect(bots.map((bot) => bot.status)).toEqual(["call_ended", "call_ended"]);

    // Stripe's event of the cancellation applies like any other.
    const deleted = a.eventsFor(stripeSubscriptionId).at(-1)!;
    expect(deleted.type).toBe("customer.subscription.deleted");
    const applied = await a.postStripeEvent(deleted);
    expect(applied.status).toBe(200);
    await settle();
    const subscription = await db().subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId },
    });
    expect(subscription.status).toBe("canceled");
    // A payment of the subscription it had at the deletion (a renewal Stripe reports late) is
    // recorded as before and refunded by nobody (BILLING.md: an operator refunds on request).
    const renewal = a.fake.invoiceEvent("invoice.paid", stripeSubscriptionId);
    expect((await a.postStripeEvent(renewal)).status).toBe(200);
    await settle();
    expect(a.fake.requestsTo("POST", "/v1/refunds")).toHaveLength(0);
    expect(await db().providerCall.count({ where: { organizationId: org.organizationId } })).toBe(
      4,
    );
    // Nobody of a deleted organization is told about its plan.
    expect(await db().notification.count({ where: { organizationId: org.organizationId } })).toBe(
      noticesBefore,
    );
  });

  it("deletes the organization's meetings with it: a recording reported later is not copied, and the purge deletes the stored ones", async () => {
    const org = await subscribedOrganization(a);
    const { admin } = org;
    const meetingId = await newMeeting(admin.headers);
    const uploaded = await request(a.testApp.app)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(admin.headers)
      .set("Content-Type", "video/mp4")
      .send(Buffer.alloc(4096, 7));
    expect(uploaded.status).toBe(201);
    const otherMeetingId = await newMeeting(admin.headers);

    await deleteOrganization(admin.orgClerkId);
    const meetings = await db().meeting.findMany({ where: { organizationId: org.organizationId } });
    expect(meetings).toHaveLength(2);
    for (const row of meetings) expect(row.deletedAt).not.toBeNull();

    // Recall reports a recording of the other meeting afterwards: nothing is downloaded.
    const imports = a.testApp.ctx.modules.recordings.deps.imports;
    let resolved = 0;
    const importId = (await enqueueRecordingImport(
      { db: db() },
      {
        organizationId: org.organizationId,
        meetingId: otherMeetingId,
        externalId: `rec_${uniqueSuffix()}`,
        now: a.clock.now(),
      },
    ))!;
    const outcome = await processRecordingImport(
      {
        ...imports,
        resolveMedia: () => {
          resolved += 1;
          return Promise.reject(new Error("not asked"));
        },
      },
      { importId },
    );
    expect(outcome).toBe("failed");
    expect(resolved).toBe(0);

    // STORAGE_PURGE_AFTER_DAYS later the purge deletes the uploaded recording, row and file.
    const stored = await db().storageObject.findMany({
      where: { organizationId: org.organizationId },
    });
    expect(stored).toHaveLength(1);
    const before = a.clock.now();
    a.clock.advance((a.testApp.ctx.config.STORAGE_PURGE_AFTER_DAYS + 1) * 24 * 60 * 60 * 1000);
    try {
      const purge = a.testApp.ctx.jobs.find((job) => job.name === "cleanupOrphanedStorage")!;
      await runJob(a.testApp.ctx, purge, {
        scheduledFor: a.clock.now(),
        instanceId: "test",
      });
      expect(
        await db().storageObject.count({ where: { organizationId: org.organizationId } }),
      ).toBe(0);
      expect(await a.testApp.ctx.storage.exists(stored[0]!.key)).toBe(false);
    } finally {
      a.clock.set(before);
    }
  });

  it("retries the cancellation and the leave after Stripe and Recall fail (5xx), until they succeed", async () => {
    const org = await subscribedOrganization(a);
    const { admin, stripeSubscriptionId } = org;
    const recallBotId = await meetingWithBot(admin.headers);
    a.fake.failNext({ method: "DELETE", path: `/v1/subscriptions/${stripeSubscriptionId}` });
    recall.failNext({ status: 503 }, { method: "POST", path: /leave_call/ });

    await deleteOrganization(admin.orgClerkId);

    expect(cancelRequests(stripeSubscriptionId).map((r) => r.status)).toEqual([500]);
    expect(leaveRequests(recallBotId)).toHaveLength(1);
    expect(recallStatuses(recallBotId)).toEqual(["ready"]);
    expect(a.fake.subscriptions.get(stripeSubscriptionId)!.status).toBe("active");
    const failing = { organizationId: org.organizationId, kind: { not: EXPIRE_CALL } };
    let calls = await db().providerCall.findMany({ where: failing });
    expect(calls.map((call) => [call.status, call.attempts])).toEqual([
      ["pending", 1],
      ["pending", 1],
    ]);
    expect(calls.every((call) => call.lastError !== null)).toBe(true);

    // Not due yet: the job leaves them alone.
    await runRetryJob(a.testApp);
    expect(cancelRequests(stripeSubscriptionId)).toHaveLength(1);

    // After the backoff (30 s), the job of either instance makes them.
    a.clock.advance(31_000);
    await runRetryJob(second);
    await settle();
    expect(cancelRequests(stripeSubscriptionId).map((r) => r.status)).toEqual([500, 200]);
    expect(leaveRequests(recallBotId)).toHaveLength(2);
    expect(recallStatuses(recallBotId)).toEqual(["ready", "call_ended"]);
    expect(a.fake.subscriptions.get(stripeSubscriptionId)!.status).toBe("canceled");
    calls = await db().providerCall.findMany({ where: failing });
    expect(calls.map((call) => [call.status, call.attempts])).toEqual([
      ["done", 2],
      ["done", 2],
    ]);

    const applied = await a.postStripeEvent(a.eventsFor(stripeSubscriptionId).at(-1)!);
    expect(applied.status).toBe(200);
  });

  it("sends no new bot for a deleted organization's meetings", async () => {
    const org = await subscribedOrganization(a);
    const meetingId = await newMeeting(org.admin.headers);
    await deleteOrganization(org.admin.orgClerkId);
    const created = recall.createdBots().length;

    const refused = await request(a.testApp.app)
      .post(`/api/v1/meetings/${meetingId}/bot`)
      .set(org.admin.headers)
      .send({});
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("ORGANIZATION_DELETED");
    // Past authentication (a credential checked before the deletion), the reservation's guard
    // finds no live organization.
    await expect(
      createBot(a.testApp.ctx.modules.bots.deps.bots, {
        organizationId: org.organizationId,
        meetingId,
      }),
    ).rejects.toMatchObject({ status: 404 });
    expect(recall.createdBots()).toHaveLength(created);
    expect(await db().bot.count({ where: { organizationId: org.organizationId } })).toBe(0);
  });

  it("cancels a subscription that starts after the deletion (a Checkout paid late)", async () => {
    const org = await subscribedOrganization(a);
    await deleteOrganization(org.admin.orgClerkId);

    const late = await a.testApp.ctx.modules.billing.deps.deps.stripe!.subscriptions.create({
      customer: org.customerId,
      items: [{ price: "price_test_business", quantity: 1 }],
      metadata: { organizationId: org.organizationId, planSlug: "business" },
    });
    for (const event of a.eventsFor(late.id)) {
      expect((await a.postStripeEvent(event)).status).toBe(200);
    }
    await settle();
    expect(cancelRequests(late.id).map((r) => r.status)).toEqual([200]);
    expect(a.fake.subscriptions.get(late.id)!.status).toBe("canceled");
    // Its deletion event applies, and queues nothing more.
    expect((await a.postStripeEvent(a.eventsFor(late.id).at(-1)!)).status).toBe(200);
    await settle();
    expect(cancelRequests(late.id)).toHaveLength(1);
    expect(
      (await db().subscription.findUniqueOrThrow({ where: { stripeSubscriptionId: late.id } }))
        .status,
    ).toBe("canceled");
  });
});

/**
 * Recall refuses `leave_call` (400) both to a bot that has left and to one not in the call yet;
 * the second would join and record once admitted. The deletion's leave is judged by the bot's
 * state at Recall (no webhook is delivered here: the provider call alone must see to it).
 */
describe("Clerk organization.deleted, a bot Recall refuses to command", () => {
  /** The organization's provider call for its bot. */
  async function leaveCallOf(organizationId: string) {
    return db().providerCall.findFirstOrThrow({
      where: { organizationId, kind: "recall.bot.leave" },
    });
  }

  async function botRowOf(recallBotId: string) {
    return db().bot.findUniqueOrThrow({ where: { recallBotId } });
  }

  it("does not count a bot still joining as left: the call is retried until the bot can leave", async () => {
    const org = await subscribedOrganization(a);
    const recallBotId = await meetingWithBot(org.admin.headers);
    recall.addStatusChange(recallBotId, { code: "joining_call" });
    recall.addStatusChange(recallBotId, { code: "in_waiting_room" });

    await deleteOrganization(org.admin.orgClerkId);
    // Refused (not in the call yet), read back, not deletable (dispatched): not done.
    expect(leaveRequests(recallBotId)).toHaveLength(1);
    expect(recall.requestsTo("DELETE", `/api/v1/bot/${recallBotId}/`)).toHaveLength(1);
    let call = await leaveCallOf(org.organizationId);
    expect([call.status, call.attempts, call.result]).toEqual(["pending", 1, null]);
    expect(call.lastError).toMatch(/not in the call yet \(Recall shows in_waiting_room\)/);
    expect((await botRowOf(recallBotId)).status).toBe("in_waiting_room");

    // The host admits it; the next attempt (after the backoff) makes it leave.
    recall.addStatusChange(recallBotId, { code: "in_call_recording" });
    a.clock.advance(31_000);
    await runRetryJob(a.testApp);
    await settle();
    expect(leaveRequests(recallBotId)).toHaveLength(2);
    expect(recallStatuses(recallBotId).at(-1)).toBe("call_ended");
    call = await leaveCallOf(org.organizationId);
    expect([call.status, call.attempts, call.result]).toEqual(["done", 2, "left"]);
    expect((await botRowOf(recallBotId)).status).toBe("call_ended");
  });

  it("deletes a scheduled bot that Recall has not dispatched yet", async () => {
    const org = await subscribedOrganization(a);
    const recallBotId = await meetingWithBot(org.admin.headers);
    recall.updateBot(recallBotId, (bot) => {
      bot.join_at = new Date(Date.now() + 60 * 60 * 1000).toISOString();
    });

    await deleteOrganization(org.admin.orgClerkId);
    expect(recall.bots.has(recallBotId)).toBe(false);
    const call = await leaveCallOf(org.organizationId);
    expect([call.status, call.attempts, call.result]).toEqual(["done", 1, "deleted"]);
    const row = await botRowOf(recallBotId);
    expect([row.status, row.terminalReason]).toEqual([
      "failed",
      "deleted at Recall before it joined the call",
    ]);
  });

  it("counts a bot that had already left as left (its webhook was lost)", async () => {
    const org = await subscribedOrganization(a);
    const recallBotId = await meetingWithBot(org.admin.headers);
    recall.addStatusChange(recallBotId, { code: "in_call_recording" });
    recall.addStatusChange(recallBotId, { code: "call_ended", sub_code: "call_ended_by_host" });

    await deleteOrganization(org.admin.orgClerkId);
    expect(leaveRequests(recallBotId)).toHaveLength(1);
    expect(recall.requestsTo("DELETE", `/api/v1/bot/${recallBotId}/`)).toHaveLength(0);
    const call = await leaveCallOf(org.organizationId);
    expect([call.status, call.attempts, call.result]).toEqual(["done", 1, "already_left"]);
    expect((await botRowOf(recallBotId)).status).toBe("call_ended");
  });
});
