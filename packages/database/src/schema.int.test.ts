import { createPrismaClient, isUniqueViolation } from "./client";
import { DEFAULT_PLANS, seedPlans } from "./seed";
import {
  createBot,
  createMeeting,
  createOrganization,
  createOrganizationWithAdmin,
  createUser,
} from "./testing/factories";
import { DEFAULT_TEST_DATABASE_URL } from "./testing/prepare";

async function expectUniqueViolation(promise: Promise<unknown>): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(isUniqueViolation(error)).toBe(true);
}

const db = createPrismaClient(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL, {
  maxConnections: 20,
});
afterAll(() => db.$disconnect());

describe("seedPlans", () => {
  it("is idempotent and keeps one row per plan", async () => {
    await seedPlans(db);
    await seedPlans(db);
    const plans = await db.plan.findMany({
      where: { slug: { in: DEFAULT_PLANS.map((p) => p.slug) } },
    });
    expect(plans.map((p) => p.slug).sort()).toEqual(["business", "free", "pro"]);
    const business = plans.find((p) => p.slug === "business")!;
    expect(business.maxStorageBytes).toBeNull();
  });

  it("keeps a stored Stripe price id when a start has none configured", async () => {
    const pro = await db.plan.findUniqueOrThrow({ where: { slug: "pro" } });
    try {
      await seedPlans(db, { stripePriceIds: { pro: "price_configured" } });
      await seedPlans(db);
      const after = await db.plan.findUniqueOrThrow({ where: { slug: "pro" } });
      expect(after.stripePriceId).toBe("price_configured");
    } finally {
      await db.plan.update({ where: { slug: "pro" }, data: { stripePriceId: pro.stripePriceId } });
    }
  });
});

describe("factories", () => {
  it("default to unique values so tests never collide", async () => {
    const [a, b] = await Promise.all([
      createOrganizationWithAdmin(db),
      createOrganizationWithAdmin(db),
    ]);
    expect(a.organization.clerkId).not.toBe(b.organization.clerkId);
    expect(a.user.email).not.toBe(b.user.email);
    expect(a.membership.role).toBe("admin");
    expect(a.organization.planSlug).toBe("free");
  });
});

describe("database constraints", () => {
  it("allows only one of 20 concurrent active bots for one meeting", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        createBot(db, meeting, { status: "pending", recallBotId: null }),
      ),
    );
    const created = results.filter((r) => r.status === "fulfilled");
    const rejected = results.filter((r) => r.status === "rejected");
    expect(created).toHaveLength(1);
    expect(rejected).toHaveLength(19);
    for (const r of rejected) expect(isUniqueViolation(r.reason)).toBe(true);
  });

  it("allows only one active bot per (organization, normalized URL) across meetings", async () => {
    const org = await createOrganization(db);
    const first = await createMeeting(db, { organizationId: org.id });
    const second = await createMeeting(db, {
      organizationId: org.id,
      normalizedMeetingUrl: first.normalizedMeetingUrl,
    });
    await createBot(db, first);
    await expectUniqueViolation(createBot(db, second));

    // Another organization may send a bot to the same call.
    const other = await createOrganization(db);
    const theirs = await createMeeting(db, {
      organizationId: other.id,
      normalizedMeetingUrl: first.normalizedMeetingUrl,
    });
    await expect(createBot(db, theirs)).resolves.toBeDefined();
  });

  it("frees the slot once the bot reaches a terminal status", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    const bot = await createBot(db, meeting);
    await db.bot.update({ where: { id: bot.id }, data: { status: "done" } });
    await expect(createBot(db, meeting)).resolves.toBeDefined();
    expect(await db.bot.count({ where: { meetingId: meeting.id } })).toBe(2);
  });

  it("refuses a second processed record for the same (provider, eventId)", async () => {
    const eventId = `evt_${Date.now()}_${Math.random()}`;
    await db.processedWebhook.create({
      data: { provider: "stripe", eventId, eventType: "invoice.paid" },
    });
    await expectUniqueViolation(
      db.processedWebhook.create({
        data: { provider: "stripe", eventId, eventType: "invoice.paid" },
      }),
    );
    await expect(
      db.processedWebhook.create({
        data: { provider: "clerk", eventId, eventType: "user.created" },
      }),
    ).resolves.toBeDefined();
  });

  it("refuses a negative storage size", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    await expect(
      db.storageObject.create({
        data: {
          organizationId: org.id,
          meetingId: meeting.id,
          key: `neg-${meeting.id}`,
          contentType: "video/mp4",
          sizeBytes: -1n,
        },
      }),
    ).rejects.toThrow();
  });

  it("refuses an organization on a plan that does not exist", async () => {
    await expect(createOrganization(db, { planSlug: "platinum" })).rejects.toThrow();
    await expect(createUser(db)).resolves.toBeDefined();
  });
});
