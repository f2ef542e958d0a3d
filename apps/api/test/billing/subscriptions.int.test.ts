import { createOrganizationWithAdmin } from "@zigznote/database/testing";
import { ConflictError } from "@zigznote/shared";
import {
  cancel,
  changePlan,
  createStripeClient,
  subscribe,
  type BillingDeps,
} from "../../src/billing";
import { createLogger } from "../../src/lib/logger";
import { createBillingHarness, type BillingHarness } from "../support/billingHarness";

let h: BillingHarness;
beforeAll(async () => {
  h = await createBillingHarness();
});
afterAll(() => h.close());

async function newOrganization() {
  const { organization } = await createOrganizationWithAdmin(h.db);
  return organization;
}

function stripeSubscriptionsOf(customerId: string | null) {
  return [...h.fake.subscriptions.values()].filter((s) => s.customer === customerId);
}

function eventsFor(subscriptionId: string) {
  return h.fake.events.filter(
    (e) => (e.data.object as unknown as { id: string }).id === subscriptionId,
  );
}

describe("BillingService.subscribe", () => {
  it("creates one Stripe customer and subscription, records them and moves the plan", async () => {
    const organization = await newOrganization();
    const result = await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });

    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("pro");
    expect(stored.stripeCustomerId).toMatch(/^cus_/);
    expect(stored.billingOperationId).toBeNull();
    expect(result.subscription).toMatchObject({ planSlug: "pro", status: "active" });
    expect(result.subscription?.currentPeriodEnd).toBeInstanceOf(Date);

    const customerCalls = h.fake
      .requestsTo("POST", "/v1/customers")
      .filter(
        (r) =>
          r.params.metadata &&
          (r.params.metadata as Record<string, string>).organizationId === organization.id,
      );
    expect(customerCalls).toHaveLength(1);
    expect(customerCalls[0]!.idempotencyKey).toBe(
      `zigznote:org:${organization.id}:customer.create`,
    );
    const remote = stripeSubscriptionsOf(stored.stripeCustomerId);
    expect(remote).toHaveLength(1);
    const create = h.fake
      .requestsTo("POST", "/v1/subscriptions")
      .find((r) => r.params.customer === stored.stripeCustomerId);
    expect(create?.idempotencyKey).toMatch(/^zigznote:op:[0-9a-f-]{36}:subscription\.create$/);

    // The webhook that follows changes nothing.
    for (const event of eventsFor(remote[0]!.id as string)) await h.deliver(event);
    const after = await h.db.subscription.findMany({ where: { organizationId: organization.id } });
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ planSlug: "pro", status: "active" });
  });

  it("lets one of two concurrent subscribes (two instances) through: one customer, one subscription", async () => {
    const organization = await newOrganization();
    const other: BillingDeps = {
      db: h.db,
      stripe: createStripeClient(h.fake.clientSettings()),
      clock: h.clock,
      logger: createLogger("silent"),
      settings: h.settings,
    };
    const results = await Promise.allSettled([
      subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" }),
      subscribe(other, { organizationId: organization.id, planSlug: "pro" }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled").length).toBeGreaterThanOrEqual(1);
    for (const result of results) {
      if (result.status === "rejected") {
        expect(result.reason).toBeInstanceOf(ConflictError);
        expect((result.reason as ConflictError).code).toBe("BILLING_CHANGE_IN_PROGRESS");
      }
    }
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    const customers = [...h.fake.customers.values()].filter(
      (c) => (c.metadata as Record<string, string>).organizationId === organization.id,
    );
    expect(customers).toHaveLength(1);
    expect(stripeSubscriptionsOf(stored.stripeCustomerId)).toHaveLength(1);
    expect(await h.db.subscription.count({ where: { organizationId: organization.id } })).toBe(1);
  });

  it("survives a lost Stripe response: the SDK retries with the same key and Stripe replays", async () => {
    const organization = await newOrganization();
    h.fake.failNext({ method: "POST", path: /^\/v1\/subscriptions$/, mode: "drop" });
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stripeSubscriptionsOf(stored.stripeCustomerId)).toHaveLength(1);
    const attempts = h.fake
      .requestsTo("POST", "/v1/subscriptions")
      .filter((r) => r.params.customer === stored.stripeCustomerId);
    expect(attempts.length).toBe(2);
    expect(attempts[1]!.idempotencyKey).toBe(attempts[0]!.idempotencyKey);
    expect(attempts[1]!.replayed).toBe(true);
  });

  it("refuses the free plan and unknown plans", async () => {
    const organization = await newOrganization();
    await expect(
      subscribe(h.deps, { organizationId: organization.id, planSlug: "free" }),
    ).rejects.toMatchObject({
      status: 400,
      code: "PLAN_NOT_PURCHASABLE",
    });
    await expect(
      subscribe(h.deps, { organizationId: organization.id, planSlug: "platinum" }),
    ).rejects.toMatchObject({
      status: 404,
      code: "PLAN_NOT_FOUND",
    });
  });
});

describe("BillingService.changePlan and cancel", () => {
  it("upgrades with proration, downgrades without, and the webhooks that follow agree", async () => {
    const organization = await newOrganization();
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    h.clock.advance(2_000);
    const up = await changePlan(h.deps, { organizationId: organization.id, planSlug: "business" });
    expect(up.planSlug).toBe("business");
    const subId = up.subscription!.stripeSubscriptionId;
    const remote = h.fake.subscriptions.get(subId)!;
    expect((remote.items as { data: { price: { id: string } }[] }).data[0]!.price.id).toBe(
      "price_test_business",
    );
    const updates = h.fake.requestsTo("POST", `/v1/subscriptions/${subId}`);
    expect(updates.at(-1)!.params.proration_behavior).toBe("create_prorations");

    h.clock.advance(2_000);
    const down = await changePlan(h.deps, { organizationId: organization.id, planSlug: "pro" });
    expect(down.planSlug).toBe("pro");
    expect(
      h.fake.requestsTo("POST", `/v1/subscriptions/${subId}`).at(-1)!.params.proration_behavior,
    ).toBe("none");

    for (const event of eventsFor(subId)) await h.deliver(event);
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("pro");
    // Same plan again: nothing is called.
    const calls = h.fake.requests.length;
    expect(
      (await changePlan(h.deps, { organizationId: organization.id, planSlug: "pro" })).changed,
    ).toBe(false);
    expect(h.fake.requests.length).toBe(calls);
  });

  it("cancels at period end (plan kept) and then now (back to free), webhooks agreeing", async () => {
    const organization = await newOrganization();
    const { subscription } = await subscribe(h.deps, {
      organizationId: organization.id,
      planSlug: "pro",
    });
    const subId = subscription!.stripeSubscriptionId;
    h.clock.advance(1_000);
    const scheduled = await cancel(h.deps, { organizationId: organization.id, atPeriodEnd: true });
    expect(scheduled.subscription).toMatchObject({ cancelAtPeriodEnd: true, status: "active" });
    expect(scheduled.planSlug).toBe("pro");
    expect(h.fake.subscriptions.get(subId)!.cancel_at_period_end).toBe(true);

    h.clock.advance(1_000);
    const canceled = await cancel(h.deps, { organizationId: organization.id, atPeriodEnd: false });
    expect(canceled.subscription?.status).toBe("canceled");
    expect(canceled.planSlug).toBe("free");
    expect(h.fake.subscriptions.get(subId)!.status).toBe("canceled");

    for (const event of eventsFor(subId)) await h.deliver(event);
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("free");
    const row = await h.db.subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId: subId },
    });
    expect(row.status).toBe("canceled");
    await expect(
      cancel(h.deps, { organizationId: organization.id, atPeriodEnd: false }),
    ).rejects.toMatchObject({
      code: "NO_ACTIVE_SUBSCRIPTION",
    });
  });
});

describe("billing changes that fail half-way", () => {
  /** Makes PostgreSQL refuse writes of this organization's subscriptions (a real DB failure). */
  async function breakSubscriptionWrites(organizationId: string): Promise<() => Promise<void>> {
    const name = `zz_fail_${organizationId.replace(/-/g, "")}`;
    await h.db.$executeRawUnsafe(
      `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
    );
    await h.db.$executeRawUnsafe(
      `CREATE TRIGGER ${name} BEFORE INSERT OR UPDATE ON subscriptions FOR EACH ROW
       WHEN (NEW.organization_id = '${organizationId}'::uuid) EXECUTE FUNCTION ${name}()`,
    );
    return async () => {
      await h.db.$executeRawUnsafe(`DROP TRIGGER ${name} ON subscriptions`);
      await h.db.$executeRawUnsafe(`DROP FUNCTION ${name}()`);
    };
  }

  it("a failed record of a new subscription cancels it at Stripe and leaves no rows", async () => {
    const organization = await newOrganization();
    const restore = await breakSubscriptionWrites(organization.id);
    try {
      await expect(
        subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" }),
      ).rejects.toThrow(/injected failure/);
    } finally {
      await restore();
    }
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("free");
    expect(stored.billingOperationId).toBeNull();
    expect(await h.db.subscription.count({ where: { organizationId: organization.id } })).toBe(0);
    const remote = stripeSubscriptionsOf(stored.stripeCustomerId);
    expect(remote).toHaveLength(1);
    expect(remote[0]!.status).toBe("canceled");
    // And the organization can subscribe afterwards (same customer).
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    const customers = [...h.fake.customers.values()].filter(
      (c) => (c.metadata as Record<string, string>).organizationId === organization.id,
    );
    expect(customers).toHaveLength(1);
  });

  it("a failed record of a plan change restores the previous price at Stripe", async () => {
    const organization = await newOrganization();
    const { subscription } = await subscribe(h.deps, {
      organizationId: organization.id,
      planSlug: "pro",
    });
    const subId = subscription!.stripeSubscriptionId;
    const restore = await breakSubscriptionWrites(organization.id);
    try {
      await expect(
        changePlan(h.deps, { organizationId: organization.id, planSlug: "business" }),
      ).rejects.toThrow(/injected failure/);
    } finally {
      await restore();
    }
    const remote = h.fake.subscriptions.get(subId)!;
    expect((remote.items as { data: { price: { id: string } }[] }).data[0]!.price.id).toBe(
      "price_test_pro",
    );
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("pro");
    const row = await h.db.subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId: subId },
    });
    expect(row.planSlug).toBe("pro");
  });

  it("a Stripe failure before anything was created leaves no rows and releases the lease", async () => {
    const organization = await newOrganization();
    h.fake.failNext({
      method: "POST",
      path: /^\/v1\/subscriptions$/,
      status: 402,
      type: "card_error",
      message: "Your card was declined.",
    });
    await expect(
      subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" }),
    ).rejects.toMatchObject({
      status: 502,
      code: "STRIPE_ERROR",
    });
    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored).toMatchObject({ planSlug: "free", billingOperationId: null });
    expect(await h.db.subscription.count({ where: { organizationId: organization.id } })).toBe(0);
    expect(stripeSubscriptionsOf(stored.stripeCustomerId)).toHaveLength(0);
  });
});

describe("Stripe subscription events out of order", () => {
  async function remoteSubscription() {
    const organization = await newOrganization();
    const customer = await h.stripe.customers.create({
      metadata: { organizationId: organization.id },
    });
    await h.db.organization.update({
      where: { id: organization.id },
      data: { stripeCustomerId: customer.id },
    });
    const subscription = await h.stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: "price_test_pro" }],
      metadata: { organizationId: organization.id },
    });
    return { organization, subscription };
  }

  it("applies `updated` delivered before `created`, and ignores the older `created`", async () => {
    const { organization, subscription } = await remoteSubscription();
    h.clock.advance(5_000);
    await h.stripe.subscriptions.update(subscription.id, {
      items: [{ id: subscription.items.data[0]!.id, price: "price_test_business" }],
    });
    const [created, updated] = eventsFor(subscription.id);
    expect(created!.type).toBe("customer.subscription.created");
    expect(updated!.type).toBe("customer.subscription.updated");

    expect((await h.deliver(updated!)).applied).toBe(true);
    expect(await h.deliver(created!)).toMatchObject({ applied: false, reason: "stale" });

    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("business");
    const row = await h.db.subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId: subscription.id },
    });
    expect(row.planSlug).toBe("business");
  });

  it("keeps a deleted subscription deleted when a stale `updated` arrives after", async () => {
    const { organization, subscription } = await remoteSubscription();
    h.clock.advance(5_000);
    await h.stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    h.clock.advance(5_000);
    await h.stripe.subscriptions.cancel(subscription.id);
    const [created, updated, deleted] = eventsFor(subscription.id);
    expect(deleted!.type).toBe("customer.subscription.deleted");

    await h.deliver(created!);
    expect(
      (await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } })).planSlug,
    ).toBe("pro");
    await h.deliver(deleted!);
    expect(await h.deliver(updated!)).toMatchObject({ applied: false, reason: "stale" });

    const stored = await h.db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    expect(stored.planSlug).toBe("free");
    const row = await h.db.subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId: subscription.id },
    });
    expect(row.status).toBe("canceled");
  });

  it("ignores subscriptions of customers and prices it does not know", async () => {
    const customer = await h.stripe.customers.create({});
    const subscription = await h.stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: "price_test_pro" }],
    });
    const [created] = eventsFor(subscription.id);
    expect(await h.deliver(created!)).toMatchObject({ applied: false, reason: "unknown_customer" });
  });
});

describe("fake Stripe server idempotency", () => {
  it("replays a key with the same parameters and refuses it with other parameters", async () => {
    const first = await h.stripe.customers.create({ name: "A" }, { idempotencyKey: "k-replay" });
    const again = await h.stripe.customers.create({ name: "A" }, { idempotencyKey: "k-replay" });
    expect(again.id).toBe(first.id);
    await expect(
      h.stripe.customers.create({ name: "B" }, { idempotencyKey: "k-replay" }),
    ).rejects.toMatchObject({ type: "StripeIdempotencyError" });
  });
});
