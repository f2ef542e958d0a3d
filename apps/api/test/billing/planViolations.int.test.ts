import {
  createMeeting,
  createMembership,
  createOrganizationWithAdmin,
  createStorageObject,
  createUser,
} from "@zigznote/database/testing";
import {
  assertCanWrite,
  cancel,
  changePlan,
  checkPlanViolations,
  escalateExpiredStorageGrace,
  getOrganizationOverview,
  listPlans,
  parseViolations,
  subscribe,
  type WriteCheckInput,
} from "../../src/billing";
import { serializePlan } from "../../src/billing/serializers";
import { OrganizationOverviewSchema, PlanSchema } from "../../src/billing/schemas";
import { startOfUtcMonth } from "../../src/recordings";
import { createBillingHarness, type BillingHarness } from "../support/billingHarness";

const DAY_MS = 24 * 60 * 60 * 1000;
const GIB = 1024n * 1024n * 1024n;

let h: BillingHarness;
beforeAll(async () => {
  h = await createBillingHarness();
});
afterAll(() => h.close());

async function violationsOf(organizationId: string) {
  const organization = await h.db.organization.findUniqueOrThrow({ where: { id: organizationId } });
  return { list: parseViolations(organization.planViolations), at: organization.planViolationsAt };
}

function now() {
  return h.clock.now();
}

/** The write check for `action` at the test clock's now. */
function canWrite(organizationId: string, action: WriteCheckInput["action"]): Promise<void> {
  return assertCanWrite({ db: h.db }, { organizationId, action, now: now() });
}

/** Re-runs the plan-violation check for the organization at the test clock's now. */
function recheck(organizationId: string) {
  return checkPlanViolations({ db: h.db, settings: h.settings }, { organizationId, now: now() });
}

describe("meetings over the limit", () => {
  it("is detected on cancellation back to free, refuses meetings and bots with 403, clears on upgrade and on a new month", async () => {
    const { organization } = await createOrganizationWithAdmin(h.db);
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    for (let i = 0; i < 12; i += 1) await createMeeting(h.db, { organizationId: organization.id });
    await expect(canWrite(organization.id, "meeting.create")).resolves.toBeUndefined();

    await cancel(h.deps, { organizationId: organization.id, atPeriodEnd: false });
    const { list, at } = await violationsOf(organization.id);
    expect(list).toEqual([
      expect.objectContaining({ type: "meetings", limit: 10, current: 12, action: "read_only" }),
    ]);
    expect(at).toEqual(now());
    for (const action of ["meeting.create", "bot.create"] as const) {
      await expect(canWrite(organization.id, action)).rejects.toMatchObject({
        status: 403,
        code: "PLAN_LIMIT_MEETINGS",
        details: { limit: 10, current: 12, planSlug: "free" },
      });
    }
    await expect(canWrite(organization.id, "recording.create")).resolves.toBeUndefined();
    const noticeTypes = await h.db.notification.findMany({
      where: { organizationId: organization.id, type: "plan.violation" },
    });
    expect(noticeTypes).toHaveLength(1);

    // Upgrade: cleared.
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    expect((await violationsOf(organization.id)).list).toEqual([]);
    expect((await violationsOf(organization.id)).at).toBeNull();
    await expect(canWrite(organization.id, "bot.create")).resolves.toBeUndefined();

    // Back to free, then a new month: usage drops, the violation goes.
    await cancel(h.deps, { organizationId: organization.id, atPeriodEnd: false });
    expect((await violationsOf(organization.id)).list).toHaveLength(1);
    const nextMonth = new Date(
      startOfUtcMonth(new Date(now().getTime() + 32 * DAY_MS)).getTime() + 1000,
    );
    await checkPlanViolations(
      { db: h.db, settings: h.settings },
      { organizationId: organization.id, now: nextMonth },
    );
    expect((await violationsOf(organization.id)).list).toEqual([]);
    await expect(
      assertCanWrite(
        { db: h.db },
        { organizationId: organization.id, action: "meeting.create", now: nextMonth },
      ),
    ).resolves.toBeUndefined();
  });
});

describe("team members over the limit", () => {
  it("is detected when the deletion webhook brings the organization to free, notifies admins, refuses new members, clears when members leave", async () => {
    const { organization, user: admin } = await createOrganizationWithAdmin(h.db);
    const members = [];
    for (let i = 0; i < 4; i += 1) {
      const user = await createUser(h.db);
      members.push(
        await createMembership(h.db, { organizationId: organization.id, userId: user.id }),
      );
    }
    const { subscription } = await subscribe(h.deps, {
      organizationId: organization.id,
      planSlug: "pro",
    });
    h.clock.advance(2_000);
    // Canceled from Stripe's dashboard: only the webhook tells us.
    await h.stripe.subscriptions.cancel(subscription!.stripeSubscriptionId);
    const deleted = h.fake.events.find(
      (e) =>
        e.type === "customer.subscription.deleted" &&
        (e.data.object as { id: string }).id === subscription!.stripeSubscriptionId,
    );
    expect(await h.deliver(deleted!)).toMatchObject({ applied: true });

    const { list } = await violationsOf(organization.id);
    expect(list).toEqual([
      expect.objectContaining({
        type: "team_members",
        limit: 3,
        current: 5,
        action: "notify_admin",
      }),
    ]);
    const notices = await h.db.notification.findMany({
      where: { organizationId: organization.id, type: "plan.violation" },
    });
    expect(notices.map((n) => n.recipientUserId)).toEqual([admin.id]);
    await expect(canWrite(organization.id, "member.add")).rejects.toMatchObject({
      status: 403,
      code: "PLAN_LIMIT_TEAM_MEMBERS",
    });
    await expect(canWrite(organization.id, "meeting.create")).resolves.toBeUndefined();

    // Member removal hook: two leave, 3 of 3 is within the limit.
    await h.db.membership.deleteMany({ where: { id: { in: [members[0]!.id, members[1]!.id] } } });
    await recheck(organization.id);
    expect((await violationsOf(organization.id)).list).toEqual([]);
    // At the limit: still no new member.
    await expect(canWrite(organization.id, "member.add")).rejects.toMatchObject({
      code: "PLAN_LIMIT_TEAM_MEMBERS",
    });
  });
});

describe("storage over the limit", () => {
  it("gets a grace period on downgrade, turns read-only when it ends, clears when recordings are deleted", async () => {
    const { organization } = await createOrganizationWithAdmin(h.db);
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "business" });
    const meeting = await createMeeting(h.db, { organizationId: organization.id });
    const big = await createStorageObject(h.db, meeting, { sizeBytes: 90n * GIB });
    await createStorageObject(h.db, meeting, { sizeBytes: 20n * GIB });

    const downgradedAt = now();
    await changePlan(h.deps, { organizationId: organization.id, planSlug: "pro" });
    const first = (await violationsOf(organization.id)).list;
    expect(first).toEqual([
      {
        type: "storage",
        limit: Number(100n * GIB),
        current: Number(110n * GIB),
        action: "grace_period",
        detectedAt: downgradedAt.toISOString(),
        graceEndsAt: new Date(downgradedAt.getTime() + 7 * DAY_MS).toISOString(),
      },
    ]);
    await expect(canWrite(organization.id, "recording.create")).resolves.toBeUndefined();

    // A later check keeps detectedAt and the grace end.
    h.clock.advance(DAY_MS);
    await recheck(organization.id);
    expect((await violationsOf(organization.id)).list).toEqual(first);

    // Grace over: the hourly escalation makes it read-only and tells the admins.
    h.clock.set(new Date(downgradedAt.getTime() + 7 * DAY_MS));
    expect(
      await escalateExpiredStorageGrace({ db: h.db, settings: h.settings }, { now: now() }),
    ).toContain(organization.id);
    expect((await violationsOf(organization.id)).list[0]).toMatchObject({ action: "read_only" });
    for (const action of ["recording.create", "meeting.create", "bot.create"] as const) {
      await expect(canWrite(organization.id, action)).rejects.toMatchObject({
        status: 403,
        code: "PLAN_LIMIT_STORAGE",
      });
    }
    const notices = await h.db.notification.findMany({
      where: { organizationId: organization.id, type: "plan.violation" },
    });
    expect(notices.map((n) => (n.payload as { action: string }).action).sort()).toEqual([
      "grace_period",
      "read_only",
    ]);

    // Storage deletion hook: usage drops under the limit.
    await h.db.storageObject.delete({ where: { id: big.id } });
    await recheck(organization.id);
    expect((await violationsOf(organization.id)).list).toEqual([]);
    await expect(canWrite(organization.id, "recording.create")).resolves.toBeUndefined();
  });
});

describe("read side", () => {
  it("serializes plans and the organization overview as the route schemas describe", async () => {
    const plans = (await listPlans({ db: h.db })).map(serializePlan);
    expect(plans.map((p) => p.slug)).toEqual(["free", "pro", "business"]);
    for (const plan of plans) PlanSchema.parse(plan);
    expect(plans[2]!.limits).toEqual({
      teamMembers: null,
      storageBytes: null,
      meetingsPerMonth: null,
    });

    const { organization } = await createOrganizationWithAdmin(h.db);
    await subscribe(h.deps, { organizationId: organization.id, planSlug: "pro" });
    const overview = await getOrganizationOverview(
      { db: h.db },
      { organizationId: organization.id, now: now() },
    );
    expect(OrganizationOverviewSchema.parse(overview)).toEqual(overview);
    expect(overview).toMatchObject({
      plan: { slug: "pro" },
      subscriptionStatus: "active",
      usage: { teamMembers: 1, storageBytes: 0, meetingsThisMonth: 0 },
      violations: [],
    });
  });
});
