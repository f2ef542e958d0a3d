import {
  createMembership,
  createOrganizationWithAdmin,
  createSubscription,
  createUser,
} from "@zigznote/database/testing";
import { assertCanWrite, suspendExpiredGracePeriods } from "../../src/billing";
import { createBillingHarness, type BillingHarness } from "../support/billingHarness";

const DAY_MS = 24 * 60 * 60 * 1000;

let h: BillingHarness;
beforeAll(async () => {
  h = await createBillingHarness();
});
afterAll(() => h.close());

/** An organization with two admins and one member, on pro through a subscription. */
async function subscribedOrganization() {
  const { organization } = await createOrganizationWithAdmin(h.db, { planSlug: "pro" });
  const secondAdmin = await createUser(h.db);
  await createMembership(h.db, {
    organizationId: organization.id,
    userId: secondAdmin.id,
    role: "admin",
  });
  const member = await createUser(h.db);
  await createMembership(h.db, { organizationId: organization.id, userId: member.id });
  const subscription = await createSubscription(h.db, { organizationId: organization.id });
  return { organization, subscription };
}

function notices(organizationId: string) {
  return h.db.notification.findMany({
    where: { organizationId },
    orderBy: { createdAt: "asc" },
  });
}

describe("handlePaymentFailed", () => {
  it("moves the subscription to past_due with a grace period of 7 days from the first failure", async () => {
    const { organization, subscription } = await subscribedOrganization();
    // Stripe's time of the failure (`created`, whole seconds), not its arrival, starts the grace.
    const failedAt = new Date(Math.floor(h.clock.now().getTime() / 1000) * 1000);
    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );

    const row = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(row.status).toBe("past_due");
    expect(row.paymentRetryCount).toBe(1);
    expect(row.paymentFailedAt).toEqual(failedAt);
    expect(row.graceEndsAt).toEqual(new Date(failedAt.getTime() + 7 * DAY_MS));

    // One dunning notice per admin, none for the plain member.
    const queued = await notices(organization.id);
    expect(queued).toHaveLength(2);
    expect(queued.every((n) => n.type === "billing.payment_failed")).toBe(true);

    // A later failure keeps the grace period's end.
    h.clock.advance(2 * DAY_MS);
    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );
    const again = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(again.graceEndsAt).toEqual(row.graceEndsAt);
    expect(again.paymentRetryCount).toBe(2);
    // Writes are still allowed while past_due.
    await expect(
      assertCanWrite(
        { db: h.db },
        { organizationId: organization.id, action: "meeting.create", now: h.clock.now() },
      ),
    ).resolves.toBeUndefined();
  });

  it("sends one notice per failure up to four, the last with the suspension date", async () => {
    const { organization, subscription } = await subscribedOrganization();
    for (let i = 0; i < 5; i += 1) {
      await h.deliver(
        h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
      );
    }
    const row = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(row.paymentRetryCount).toBe(5);
    const queued = await notices(organization.id);
    expect(queued).toHaveLength(4 * 2);
    const finals = queued.filter((n) => n.type === "billing.payment_failed.final");
    expect(finals).toHaveLength(2);
    expect(finals[0]!.payload).toMatchObject({
      attempt: 4,
      maxAttempts: 4,
      suspendsAt: row.graceEndsAt!.toISOString(),
    });
    const attempts = queued
      .filter((n) => n.type === "billing.payment_failed")
      .map((n) => (n.payload as { attempt: number }).attempt)
      .sort();
    expect(attempts).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it("counts 10 concurrent failures (distinct events) as 10", async () => {
    const { organization, subscription } = await subscribedOrganization();
    const events = Array.from({ length: 10 }, () =>
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );
    await Promise.all(events.map((event) => h.deliver(event)));
    const row = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(row.paymentRetryCount).toBe(10);
    expect(await h.db.notification.count({ where: { organizationId: organization.id } })).toBe(
      4 * 2,
    );
  });

  it("does not queue a notice twice when the same event is handled again", async () => {
    const { organization, subscription } = await subscribedOrganization();
    const event = h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId);
    await h.deliver(event);
    await h.deliver(event);
    expect(await h.db.notification.count({ where: { organizationId: organization.id } })).toBe(2);
  });
});

describe("handlePaymentSucceeded and suspendExpiredGracePeriods", () => {
  it("restores active and clears the grace fields after a failure", async () => {
    const { subscription } = await subscribedOrganization();
    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );
    await h.deliver(h.fake.invoiceEvent("invoice.paid", subscription.stripeSubscriptionId));
    const row = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(row).toMatchObject({
      status: "active",
      graceEndsAt: null,
      paymentFailedAt: null,
      paymentRetryCount: 0,
    });
    // Paid in time: the grace job has nothing to suspend.
    h.clock.advance(8 * DAY_MS);
    const suspended = await suspendExpiredGracePeriods(
      { db: h.db, notices: h.notices },
      { now: h.clock.now() },
    );
    expect(suspended).not.toContain(subscription.id);
  });

  it("suspends after the grace period (402 on writes, reads and billing fine) and a payment restores access", async () => {
    const { organization, subscription } = await subscribedOrganization();
    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );

    h.clock.advance(7 * DAY_MS - 60_000);
    expect(
      await suspendExpiredGracePeriods({ db: h.db, notices: h.notices }, { now: h.clock.now() }),
    ).not.toContain(subscription.id);
    h.clock.advance(60_000);
    expect(
      await suspendExpiredGracePeriods({ db: h.db, notices: h.notices }, { now: h.clock.now() }),
    ).toContain(subscription.id);

    const row = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(row.status).toBe("suspended");
    const suspendedNotices = (await notices(organization.id)).filter(
      (n) => n.type === "billing.suspended",
    );
    expect(suspendedNotices).toHaveLength(2);
    for (const action of ["meeting.create", "bot.create", "recording.create", "write"] as const) {
      await expect(
        assertCanWrite(
          { db: h.db },
          { organizationId: organization.id, action: action, now: h.clock.now() },
        ),
      ).rejects.toMatchObject({
        status: 402,
        code: "SUBSCRIPTION_SUSPENDED",
      });
    }
    // Stripe keeps retrying: a further failure and a `past_due` update keep it suspended.
    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_failed", subscription.stripeSubscriptionId),
    );
    expect(
      (await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } })).status,
    ).toBe("suspended");

    await h.deliver(
      h.fake.invoiceEvent("invoice.payment_succeeded", subscription.stripeSubscriptionId),
    );
    const restored = await h.db.subscription.findUniqueOrThrow({ where: { id: subscription.id } });
    expect(restored).toMatchObject({ status: "active", graceEndsAt: null, paymentRetryCount: 0 });
    await expect(
      assertCanWrite(
        { db: h.db },
        { organizationId: organization.id, action: "meeting.create", now: h.clock.now() },
      ),
    ).resolves.toBeUndefined();
    expect(
      (await notices(organization.id)).filter((n) => n.type === "billing.access_restored"),
    ).toHaveLength(2);
  });

  it("asks for a retry when the invoice's subscription of a known customer is not recorded yet", async () => {
    const { organization } = await createOrganizationWithAdmin(h.db);
    const customer = await h.stripe.customers.create({
      metadata: { organizationId: organization.id },
    });
    await h.db.organization.update({
      where: { id: organization.id },
      data: { stripeCustomerId: customer.id },
    });
    const remote = await h.stripe.subscriptions.create({
      customer: customer.id,
      items: [{ price: "price_test_pro" }],
    });
    await expect(
      h.deliver(h.fake.invoiceEvent("invoice.payment_failed", remote.id)),
    ).rejects.toThrow(/not recorded yet/);
    // Unknown customer entirely: ignored.
    await expect(
      h.deliver(h.fake.invoiceEvent("invoice.payment_failed", "sub_nobody")),
    ).resolves.toMatchObject({
      applied: false,
    });
  });
});
