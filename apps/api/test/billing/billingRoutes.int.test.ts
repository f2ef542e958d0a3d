import type { Db } from "@zigznote/database";
import { createMembership, createUser } from "@zigznote/database/testing";
import request from "supertest";
import {
  createStripeClient,
  handlePaymentFailed,
  suspendExpiredGracePeriods,
} from "../../src/billing";
import { createNotices, enqueueAdminNotices, type AdminNotice } from "../../src/notifications";
import {
  BillingChangeResultSchema,
  CurrentSubscriptionSchema,
  OrganizationOverviewSchema,
  PlanListSchema,
} from "../../src/billing/schemas";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import { useBillingTestApp, type BillingTestApp } from "../support/billingHarness";

const DAY_MS = 24 * 60 * 60 * 1000;

let b: BillingTestApp;
useBillingTestApp((app) => (b = app));

const api = () => request(b.testApp.app);
const db = () => b.testApp.ctx.db;

async function adminOfNewOrganization() {
  return authHeaderFor(b.testApp, { role: "admin" });
}

async function subscribe(headers: { Authorization: string }, planSlug: string) {
  const response = await api().post("/api/v1/billing/subscription").set(headers).send({ planSlug });
  expect(response.status).toBe(200);
  return BillingChangeResultSchema.parse(response.body);
}

async function currentSubscription(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/billing/subscription").set(headers);
  expect(response.status).toBe(200);
  return CurrentSubscriptionSchema.parse(response.body).data;
}

async function overview(headers: { Authorization: string }) {
  const response = await api().get("/api/v1/organization").set(headers);
  expect(response.status).toBe(200);
  return OrganizationOverviewSchema.parse(response.body);
}

/** Delivers every event the fake emitted for the subscription (as Stripe would, in order). */
async function deliverEventsOf(subscriptionId: string) {
  for (const event of b.eventsFor(subscriptionId)) {
    const response = await b.postStripeEvent(event);
    expect(response.status).toBe(200);
  }
}

function noticesOf(organizationId: string, type?: string) {
  return db().notification.findMany({
    where: { organizationId, ...(type ? { type } : {}) },
    orderBy: { createdAt: "asc" },
  });
}

describe("billing route permissions", () => {
  it("lets members and billing:read keys read, refuses changes to members and keys (403), admins change", async () => {
    const admin = await adminOfNewOrganization();
    const member = await authHeaderFor(b.testApp, {
      role: "member",
      organizationId: admin.organizationId,
    });
    const writeKey = await apiKeyHeaderFor(b.testApp, {
      organizationId: admin.organizationId,
      scopes: ["billing:read", "billing:write"],
    });
    const noBillingKey = await apiKeyHeaderFor(b.testApp, {
      organizationId: admin.organizationId,
      scopes: ["meetings:read"],
    });

    for (const path of [
      "/api/v1/billing/plans",
      "/api/v1/billing/subscription",
      "/api/v1/organization",
    ]) {
      for (const caller of [member.headers, writeKey.headers]) {
        expect((await api().get(path).set(caller)).status).toBe(200);
      }
      const refused = await api().get(path).set(noBillingKey.headers);
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("INSUFFICIENT_SCOPE");
      expect((await api().get(path)).status).toBe(401);
    }

    for (const caller of [member.headers, writeKey.headers]) {
      for (const [path, body] of [
        ["/api/v1/billing/subscription", { planSlug: "pro" }],
        ["/api/v1/billing/subscription/cancel", {}],
      ] as const) {
        const refused = await api().post(path).set(caller).send(body);
        expect(refused.status).toBe(403);
        expect(refused.body.error.code).toBe("ADMIN_REQUIRED");
      }
    }
    const stored = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(stored.stripeCustomerId).toBeNull();
    expect(stored.planSlug).toBe("free");

    const changed = await subscribe(admin.headers, "pro");
    expect(changed).toMatchObject({ planSlug: "pro", changed: true, data: { status: "active" } });
  });

  it("lists the plans with their limits (null = unlimited) and validates change requests", async () => {
    const admin = await adminOfNewOrganization();
    // The seeded plans, in rank order (other suites add plans of their own to the database).
    const plans = PlanListSchema.parse(
      (await api().get("/api/v1/billing/plans").set(admin.headers)).body,
    ).data.filter((plan) => ["free", "pro", "business"].includes(plan.slug));
    expect(plans.map((plan) => plan.slug)).toEqual(["free", "pro", "business"]);
    expect(plans[0]!.limits).toEqual({
      teamMembers: 3,
      storageBytes: 1024 ** 3,
      meetingsPerMonth: 10,
    });
    expect(plans[2]!.limits).toEqual({
      teamMembers: null,
      storageBytes: null,
      meetingsPerMonth: null,
    });

    const cases: [unknown, number, string][] = [
      [{}, 400, "VALIDATION_ERROR"],
      [{ planSlug: "pro", extra: 1 }, 400, "VALIDATION_ERROR"],
      [{ planSlug: "free" }, 400, "PLAN_NOT_PURCHASABLE"],
      [{ planSlug: "platinum" }, 404, "PLAN_NOT_FOUND"],
    ];
    for (const [body, status, code] of cases) {
      const response = await api()
        .post("/api/v1/billing/subscription")
        .set(admin.headers)
        .send(body as object);
      expect(response.status).toBe(status);
      expect(response.body.error.code).toBe(code);
    }
    const cancel = await api()
      .post("/api/v1/billing/subscription/cancel")
      .set(admin.headers)
      .send({});
    expect(cancel.status).toBe(404);
    expect(cancel.body.error.code).toBe("NO_ACTIVE_SUBSCRIPTION");
    expect(await currentSubscription(admin.headers)).toBeNull();
  });
});

describe("subscription lifecycle through the routes and Stripe's webhooks", () => {
  it("subscribes, upgrades, downgrades and cancels; the events that follow change nothing and apply once", async () => {
    const admin = await adminOfNewOrganization();

    const subscribed = await subscribe(admin.headers, "pro");
    const subscriptionId = subscribed.data!.stripeSubscriptionId;
    await deliverEventsOf(subscriptionId);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      planSlug: "pro",
      status: "active",
      cancelAtPeriodEnd: false,
    });
    // A redelivery is acknowledged as a duplicate.
    const replay = await b.postStripeEvent(b.eventsFor(subscriptionId)[0]!);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ received: true, duplicate: true });

    b.clock.advance(2_000);
    const upgraded = await subscribe(admin.headers, "business");
    expect(upgraded).toMatchObject({ planSlug: "business", changed: true });
    expect(upgraded.data!.stripeSubscriptionId).toBe(subscriptionId);
    await deliverEventsOf(subscriptionId);
    expect((await overview(admin.headers)).plan.slug).toBe("business");

    b.clock.advance(2_000);
    const downgraded = await subscribe(admin.headers, "pro");
    expect(downgraded).toMatchObject({ planSlug: "pro", changed: true });
    await deliverEventsOf(subscriptionId);
    const afterDowngrade = await overview(admin.headers);
    expect(afterDowngrade).toMatchObject({
      plan: { slug: "pro" },
      subscriptionStatus: "active",
      violations: [],
    });
    expect(await db().subscription.count({ where: { organizationId: admin.organizationId } })).toBe(
      1,
    );

    b.clock.advance(2_000);
    const scheduled = await api()
      .post("/api/v1/billing/subscription/cancel")
      .set(admin.headers)
      .send({});
    expect(scheduled.status).toBe(200);
    expect(scheduled.body).toMatchObject({ planSlug: "pro", data: { cancelAtPeriodEnd: true } });
    await deliverEventsOf(subscriptionId);
    expect((await overview(admin.headers)).plan.slug).toBe("pro");

    b.clock.advance(2_000);
    const canceled = await api()
      .post("/api/v1/billing/subscription/cancel")
      .set(admin.headers)
      .send({ atPeriodEnd: false });
    expect(canceled.status).toBe(200);
    expect(canceled.body).toMatchObject({ planSlug: "free", data: { status: "canceled" } });
    await deliverEventsOf(subscriptionId);
    const final = await overview(admin.headers);
    expect(final).toMatchObject({ plan: { slug: "free" }, subscriptionStatus: "canceled" });
    expect(b.fake.subscriptions.get(subscriptionId)!.status).toBe("canceled");
    expect(
      await db().processedWebhook.count({
        where: {
          provider: "stripe",
          eventId: { in: b.eventsFor(subscriptionId).map((e) => e.id) },
        },
      }),
    ).toBe(b.eventsFor(subscriptionId).length);
  });

  it("converges on Stripe's state when `updated` arrives before `created` and a stale `updated` after `deleted`", async () => {
    const admin = await adminOfNewOrganization();
    // Changes made at Stripe directly (dashboard), known to us only through their events.
    const stripe = createStripeClient(b.fake.clientSettings());
    const customer = await stripe.customers.create({
      metadata: { organizationId: admin.organizationId },
    });
    const subscription = await stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: "price_test_pro" }],
      metadata: { organizationId: admin.organizationId },
    });
    b.clock.advance(2_000);
    await stripe.subscriptions.update(subscription.id, {
      items: [{ id: subscription.items.data[0]!.id, price: "price_test_business" }],
    });
    const [created, updated] = b.eventsFor(subscription.id);
    expect([created!.type, updated!.type]).toEqual([
      "customer.subscription.created",
      "customer.subscription.updated",
    ]);

    expect((await b.postStripeEvent(updated!)).status).toBe(200);
    expect((await b.postStripeEvent(created!)).status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      planSlug: "business",
      status: "active",
    });
    expect((await overview(admin.headers)).plan.slug).toBe("business");

    b.clock.advance(2_000);
    await stripe.subscriptions.cancel(subscription.id);
    const deleted = b.eventsFor(subscription.id).at(-1)!;
    expect(deleted.type).toBe("customer.subscription.deleted");
    expect((await b.postStripeEvent(deleted)).status).toBe(200);
    // A late redelivery of an older `updated` (new event id, older data) cannot revive it.
    const stale = { ...updated!, id: `${updated!.id}_late` };
    expect((await b.postStripeEvent(stale)).status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      planSlug: "business",
      status: "canceled",
    });
    expect((await overview(admin.headers)).plan.slug).toBe("free");
  });
});

describe("payment grace period through signed invoice events", () => {
  it("past_due with grace 7 days ahead, four failures four notices (sent after commit), paid -> active, paid after suspension -> active", async () => {
    const admin = await adminOfNewOrganization();
    const { stripeSubscriptionId } = (await subscribe(admin.headers, "pro")).data!;

    // Stripe's time of the failure (`created`, whole seconds), not its arrival, starts the grace.
    const firstFailureAt = new Date(Math.floor(b.clock.now().getTime() / 1000) * 1000);
    const failed = await b.postStripeEvent(
      b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId),
    );
    expect(failed.status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
      graceEndsAt: new Date(firstFailureAt.getTime() + 7 * DAY_MS).toISOString(),
    });

    for (let attempt = 2; attempt <= 4; attempt += 1) {
      b.clock.advance(DAY_MS);
      const response = await b.postStripeEvent(
        b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId, {
          attemptCount: attempt,
        }),
      );
      expect(response.status).toBe(200);
    }
    const pastDue = await currentSubscription(admin.headers);
    expect(pastDue).toMatchObject({
      status: "past_due",
      paymentRetryCount: 4,
      graceEndsAt: new Date(firstFailureAt.getTime() + 7 * DAY_MS).toISOString(),
    });
    await b.testApp.ctx.notices.idle();
    const notices = await noticesOf(admin.organizationId);
    expect(notices.map((notice) => notice.type)).toEqual([
      "billing.payment_failed",
      "billing.payment_failed",
      "billing.payment_failed",
      "billing.payment_failed.final",
    ]);
    expect(notices.every((notice) => notice.status === "sent")).toBe(true);
    expect(notices[3]!.payload).toMatchObject({ suspendsAt: pastDue!.graceEndsAt });

    const paid = await b.postStripeEvent(b.fake.invoiceEvent("invoice.paid", stripeSubscriptionId));
    expect(paid.status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "active",
      paymentRetryCount: 0,
      graceEndsAt: null,
      paymentFailedAt: null,
    });

    // Fails again, nobody pays for 8 days: the hourly job suspends.
    await b.postStripeEvent(b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId));
    b.clock.advance(8 * DAY_MS);
    await suspendExpiredGracePeriods(
      { db: db(), notices: b.testApp.ctx.notices },
      { now: b.clock.now() },
    );
    const fresh = await authHeaderFor(b.testApp, { organizationId: admin.organizationId });

    const write = await api()
      .post("/api/v1/api-keys")
      .set(fresh.headers)
      .send({ name: "while suspended", scopes: ["meetings:read"] });
    expect(write.status).toBe(402);
    expect(write.body.error.code).toBe("SUBSCRIPTION_SUSPENDED");
    expect(await currentSubscription(fresh.headers)).toMatchObject({ status: "suspended" });
    expect((await overview(fresh.headers)).subscriptionStatus).toBe("suspended");
    for (const path of ["/api/v1/billing/plans", "/api/v1/api-keys", "/api/v1/me"]) {
      expect((await api().get(path).set(fresh.headers)).status).toBe(200);
    }

    const late = await b.postStripeEvent(
      b.fake.invoiceEvent("invoice.payment_succeeded", stripeSubscriptionId),
    );
    expect(late.status).toBe(200);
    expect(await currentSubscription(fresh.headers)).toMatchObject({
      status: "active",
      graceEndsAt: null,
    });
    const again = await api()
      .post("/api/v1/api-keys")
      .set(fresh.headers)
      .send({ name: "after payment", scopes: ["meetings:read"] });
    expect(again.status).toBe(201);
    await b.testApp.ctx.notices.idle();
    expect((await noticesOf(admin.organizationId, "billing.access_restored")).length).toBe(2);
  });

  it("ignores a payment event older than the latest one of the other kind (out of order)", async () => {
    const admin = await adminOfNewOrganization();
    const { stripeSubscriptionId } = (await subscribe(admin.headers, "pro")).data!;
    const t = Math.floor(b.clock.now().getTime() / 1000) + 1_000;
    const invoice = (type: "invoice.payment_failed" | "invoice.paid", created: number) =>
      b.fake.invoiceEvent(type, stripeSubscriptionId, { created });

    // The payment (t+100) is delivered before the failure it followed (t+50): still active.
    expect((await b.postStripeEvent(invoice("invoice.paid", t + 100))).status).toBe(200);
    expect((await b.postStripeEvent(invoice("invoice.payment_failed", t + 50))).status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "active",
      paymentRetryCount: 0,
    });

    // A newer failure (t+200) applies; a payment older than it (t+150) arriving late does not.
    expect((await b.postStripeEvent(invoice("invoice.payment_failed", t + 200))).status).toBe(200);
    expect((await b.postStripeEvent(invoice("invoice.paid", t + 150))).status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
    });

    // The next real payment clears it.
    expect((await b.postStripeEvent(invoice("invoice.paid", t + 300))).status).toBe(200);
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "active",
      paymentRetryCount: 0,
    });
  });

  it("counts 10 concurrent invoice.payment_failed deliveries (distinct ids) as 10 failures", async () => {
    const admin = await adminOfNewOrganization();
    const { stripeSubscriptionId } = (await subscribe(admin.headers, "pro")).data!;
    const events = Array.from({ length: 10 }, (_, index) =>
      b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId, {
        attemptCount: index + 1,
      }),
    );
    const responses = await Promise.all(events.map((event) => b.postStripeEvent(event)));
    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(200));
    expect(await currentSubscription(admin.headers)).toMatchObject({
      status: "past_due",
      paymentRetryCount: 10,
    });
    // Dunning notices stop at MAX_RETRY_COUNT (4); each is queued once.
    await b.testApp.ctx.notices.idle();
    const notices = await noticesOf(admin.organizationId);
    expect(notices).toHaveLength(4);
    expect(notices.filter((n) => n.type === "billing.payment_failed.final")).toHaveLength(1);
  });
});

describe("a billing change that fails half-way (through the route)", () => {
  /** A real PostgreSQL failure on this organization's subscription writes. */
  async function breakSubscriptionWrites(organizationId: string): Promise<() => Promise<void>> {
    const name = `zz_route_fail_${organizationId.replace(/-/g, "")}`;
    await db().$executeRawUnsafe(
      `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
    );
    await db().$executeRawUnsafe(
      `CREATE TRIGGER ${name} BEFORE INSERT OR UPDATE ON subscriptions FOR EACH ROW
       WHEN (NEW.organization_id = '${organizationId}'::uuid) EXECUTE FUNCTION ${name}()`,
    );
    return async () => {
      await db().$executeRawUnsafe(`DROP TRIGGER ${name} ON subscriptions`);
      await db().$executeRawUnsafe(`DROP FUNCTION ${name}()`);
    };
  }

  /** POSTs a subscription to `planSlug` while the organization's subscription writes fail. */
  async function subscribeWhileWritesFail(
    admin: Awaited<ReturnType<typeof adminOfNewOrganization>>,
    planSlug: string,
  ) {
    const restore = await breakSubscriptionWrites(admin.organizationId);
    try {
      return await api().post("/api/v1/billing/subscription").set(admin.headers).send({ planSlug });
    } finally {
      await restore();
    }
  }

  it("answers 500, leaves no local rows, cancels the Stripe subscription; a later subscribe works", async () => {
    const admin = await adminOfNewOrganization();
    const response = await subscribeWhileWritesFail(admin, "pro");
    expect(response.status).toBe(500);
    expect(response.body.error.code).toBe("INTERNAL_ERROR");
    const stored = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(stored).toMatchObject({ planSlug: "free", billingOperationId: null });
    expect(await db().subscription.count({ where: { organizationId: admin.organizationId } })).toBe(
      0,
    );
    const remote = [...b.fake.subscriptions.values()].filter(
      (subscription) => subscription.customer === stored.stripeCustomerId,
    );
    expect(remote.map((subscription) => subscription.status)).toEqual(["canceled"]);
    // Stripe's events for the compensated subscription change nothing here either.
    for (const subscription of remote) await deliverEventsOf(subscription.id as string);
    expect(await currentSubscription(admin.headers)).toMatchObject({ status: "canceled" });
    expect((await overview(admin.headers)).plan.slug).toBe("free");

    expect((await subscribe(admin.headers, "pro")).planSlug).toBe("pro");
  });

  it("on an upgrade: answers 500, keeps the old plan locally and puts the old price back at Stripe", async () => {
    const admin = await adminOfNewOrganization();
    const { stripeSubscriptionId } = (await subscribe(admin.headers, "pro")).data!;
    const before = await db().subscription.findUniqueOrThrow({ where: { stripeSubscriptionId } });
    b.clock.advance(2_000);
    const response = await subscribeWhileWritesFail(admin, "business");
    expect(response.status).toBe(500);
    expect(await db().subscription.findUniqueOrThrow({ where: { stripeSubscriptionId } })).toEqual(
      before,
    );
    expect((await overview(admin.headers)).plan.slug).toBe("pro");
    const remote = b.fake.subscriptions.get(stripeSubscriptionId) as {
      items: { data: { price: { id: string } }[] };
    };
    expect(remote.items.data[0]!.price.id).toBe("price_test_pro");
  });
});

describe("notification delivery", () => {
  it("sends each notice once when several deliverers run at the same time", async () => {
    const admin = await adminOfNewOrganization();
    for (let i = 0; i < 3; i += 1) {
      const user = await createUser(db());
      await createMembership(db(), {
        organizationId: admin.organizationId,
        userId: user.id,
        role: "admin",
      });
    }
    const { stripeSubscriptionId } = (await subscribe(admin.headers, "pro")).data!;
    await b.testApp.ctx.notices.idle();

    const sent: string[] = [];
    const transport = {
      async send(notification: { id: string }) {
        await new Promise((resolve) => setImmediate(resolve));
        sent.push(notification.id);
      },
    };
    const { ctx } = b.testApp;
    const deliverers = Array.from({ length: 4 }, () =>
      createNotices({ db: ctx.db, clock: ctx.clock, logger: ctx.logger, transport }),
    );
    // Queued through the handler directly with the bare outbox (which queues but does not
    // deliver), so this app's own deliverer does not take them first: one notice per admin (4),
    // all pending.
    const event = b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId);
    const appNotices = async () => noticesOf(admin.organizationId, "billing.payment_failed");
    const queueOnly = {
      ...ctx.modules.billing.deps.eventDeps.settings,
      notices: {
        enqueue: (db: Db, notices: AdminNotice[]) => enqueueAdminNotices({ db }, notices),
        enqueueForOperators: () => Promise.resolve(0),
      },
    };
    await db().$transaction((tx) =>
      handlePaymentFailed(
        { ...ctx.modules.billing.deps.eventDeps, settings: queueOnly, db: tx },
        event,
      ),
    );
    expect((await appNotices()).map((notice) => notice.status)).toEqual(Array(4).fill("pending"));

    await Promise.all(
      deliverers.flatMap((deliverer) => [deliverer.deliver(), deliverer.deliver()]),
    );
    const ids = (await appNotices()).map((notice) => notice.id);
    expect(sent.filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    expect((await appNotices()).every((notice) => notice.status === "sent")).toBe(true);
  });
});

describe("GET /openapi.json", () => {
  it("documents the billing and organization routes", async () => {
    const response = await api().get("/openapi.json");
    expect(response.status).toBe(200);
    const paths = response.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths["/api/v1/billing/plans"] ?? {})).toEqual(["get"]);
    expect(Object.keys(paths["/api/v1/billing/subscription"] ?? {}).sort()).toEqual([
      "get",
      "post",
    ]);
    expect(Object.keys(paths["/api/v1/billing/subscription/cancel"] ?? {})).toEqual(["post"]);
    expect(Object.keys(paths["/api/v1/organization"] ?? {})).toEqual(["get"]);
    expect(paths["/api/v1/api-keys"]?.post).toHaveProperty("responses.402");
  });
});
