import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import {
  createMeeting,
  createOrganizationWithAdmin,
  createStorageObject,
  createSubscription,
  prepareTestDatabase,
} from "@zigznote/database/testing";
import request from "supertest";
import { checkPlanViolations } from "../../src/billing";
import { enqueueAdminNotices } from "../../src/notifications";
import { runJob } from "../../src/jobs";
import { testDatabaseUrl } from "../support/env";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { fakeRecallClient, fakeRecallEnv } from "../support/recallApp";

/**
 * Jobs act on the whole database, so this suite has a database of its own: nothing another
 * suite does at the same time can be swept up by a job run here, and the reverse.
 */
const jobsDatabaseUrl = (() => {
  const url = new URL(testDatabaseUrl);
  url.pathname = `${url.pathname}_jobs`;
  return url.toString();
})();

const DAY = 24 * 60 * 60 * 1000;

describe("scheduled jobs", () => {
  let db: PrismaClient;
  let recall: FakeRecall;
  let a: TestApp;
  let b: TestApp;
  const clock = new ManualClock();

  beforeAll(async () => {
    await prepareTestDatabase(jobsDatabaseUrl);
    db = createPrismaClient(jobsDatabaseUrl, { maxConnections: 10 });
    recall = await startFakeRecall();
    const env = {
      DATABASE_URL: jobsDatabaseUrl,
      JOB_BATCH_SIZE: "2",
      ...fakeRecallEnv(recall),
    };
    // Both instances ask one quick Recall client (no retries) whether stuck bots still exist.
    const client = fakeRecallClient(recall, {
      timeoutMs: 5_000,
      maxRetries: 0,
      retryBaseMs: 5,
      retryMaxMs: 50,
    });
    a = createTestApp({ db, clock, env, recall: client });
    b = createTestApp({
      db: createPrismaClient(jobsDatabaseUrl, { maxConnections: 10 }),
      clock,
      env,
      recall: client,
    });
  }, 120_000);
  afterAll(async () => {
    await a.close();
    await b.ctx.db.$disconnect();
    await b.close();
    await db.$disconnect();
    await recall.close();
  });

  it("runs every job once per tick with two instances, recorded, and shown on /health/jobs", async () => {
    clock.set(Date.now());
    const tick = new Date(); // unique per run: reruns on the same database do not collide
    const jobsA = a.ctx.jobs;
    const jobsB = b.ctx.jobs;
    // The modules' jobs, together: the one list the scheduler, the console and `job` share.
    expect(jobsA.map((job) => job.name).sort()).toEqual([
      "abortAbandonedUploads",
      "checkExpiredGracePeriods",
      "checkStorageGracePeriods",
      "cleanupOldWebhooks",
      "cleanupOrphanedBots",
      "cleanupOrphanedStorage",
      "deleteExpiredIdempotencyKeys",
      "deliverNotifications",
      "recheckPlanViolations",
      "retryProviderCalls",
      "retryRecordingImports",
      "warnExpiringCards",
    ]);
    const outcomes = await Promise.all(
      jobsA.flatMap((job, i) => [
        runJob(a.ctx, job, { scheduledFor: tick, instanceId: "instance-a" }),
        runJob(b.ctx, jobsB[i]!, { scheduledFor: tick, instanceId: "instance-b" }),
      ]),
    );
    expect(outcomes.filter((o) => o.status === "succeeded")).toHaveLength(a.ctx.jobs.length);
    expect(outcomes.filter((o) => o.status === "skipped")).toHaveLength(a.ctx.jobs.length);

    const runs = await db.jobRun.findMany({ where: { scheduledFor: tick } });
    expect(runs.map((run) => run.jobName).sort()).toEqual(a.ctx.jobs.map((job) => job.name).sort());
    expect(runs.every((run) => run.outcome === "succeeded" && run.finishedAt !== null)).toBe(true);

    const health = await request(a.app).get("/health/jobs");
    expect(health.status).toBe(200);
    expect(health.body.timezone).toBe("UTC");
    expect(health.body.jobs).toHaveLength(a.ctx.jobs.length);
    for (const job of health.body.jobs as {
      name: string;
      lastRun: { outcome: string } | null;
      nextRunAt: string;
    }[]) {
      expect(job.lastRun?.outcome).toBe("succeeded");
      expect(new Date(job.nextRunAt).getTime()).toBeGreaterThan(clock.now().getTime());
    }
    const metricsA = await a.ctx.metrics.registry.metrics();
    const metricsB = await b.ctx.metrics.registry.metrics();
    const count = (text: string, outcome: string) =>
      [
        ...text.matchAll(
          new RegExp(
            `zigznote_job_runs_total\\{job_name="[^"]+",outcome="${outcome}"\\} (\\d+)`,
            "g",
          ),
        ),
      ].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(count(metricsA, "succeeded") + count(metricsB, "succeeded")).toBe(a.ctx.jobs.length);
    expect(count(metricsA, "skipped") + count(metricsB, "skipped")).toBe(a.ctx.jobs.length);
  });

  it("checkExpiredGracePeriods suspends expired grace, with a notice, unless a payment landed first", async () => {
    clock.set(Date.now());
    const now = clock.now();
    const expired = await createOrganizationWithAdmin(db);
    const paid = await createOrganizationWithAdmin(db);
    const running = await createOrganizationWithAdmin(db);
    const past = {
      status: "past_due" as const,
      paymentFailedAt: new Date(now.getTime() - 8 * DAY),
      paymentRetryCount: 3,
    };
    const subExpired = await createSubscription(db, {
      organizationId: expired.organization.id,
      ...past,
      graceEndsAt: new Date(now.getTime() - 60_000),
    });
    const subPaid = await createSubscription(db, {
      organizationId: paid.organization.id,
      ...past,
      graceEndsAt: new Date(now.getTime() - 60_000),
    });
    const subRunning = await createSubscription(db, {
      organizationId: running.organization.id,
      ...past,
      graceEndsAt: new Date(now.getTime() + DAY),
    });
    // The payment webhook lands before the job's update: grace cleared, active again.
    await db.subscription.update({
      where: { id: subPaid.id },
      data: { status: "active", graceEndsAt: null, paymentFailedAt: null, paymentRetryCount: 0 },
    });

    const job = a.ctx.jobs.find((candidate) => candidate.name === "checkExpiredGracePeriods")!;
    const outcome = await runJob(a.ctx, job, { scheduledFor: now, instanceId: "a" });
    expect(outcome.status).toBe("succeeded");

    expect((await db.subscription.findUniqueOrThrow({ where: { id: subExpired.id } })).status).toBe(
      "suspended",
    );
    expect((await db.subscription.findUniqueOrThrow({ where: { id: subPaid.id } })).status).toBe(
      "active",
    );
    expect((await db.subscription.findUniqueOrThrow({ where: { id: subRunning.id } })).status).toBe(
      "past_due",
    );
    const notices = await db.notification.findMany({
      where: { organizationId: expired.organization.id, type: "billing.suspended" },
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]!.status).toBe("sent");
    expect(
      await db.notification.count({
        where: { organizationId: paid.organization.id, type: "billing.suspended" },
      }),
    ).toBe(0);
  });

  it("checkStorageGracePeriods turns an expired storage grace into read-only, with a notice", async () => {
    clock.set(Date.now());
    const now = clock.now();
    const { organization } = await createOrganizationWithAdmin(db); // free plan: 1 GiB
    const meeting = await createMeeting(db, { organizationId: organization.id });
    await createStorageObject(db, meeting, { sizeBytes: 2n * 1024n ** 3n });
    const settings = a.ctx.modules.billing.deps.settings;
    const detected = await checkPlanViolations(
      { db: db, settings: settings },
      {
        organizationId: organization.id,
        now: new Date(now.getTime() - (settings.storageGraceDays + 1) * DAY),
      },
    );
    expect(detected.violations.find((v) => v.type === "storage")?.action).toBe("grace_period");

    const job = a.ctx.jobs.find((candidate) => candidate.name === "checkStorageGracePeriods")!;
    expect((await runJob(a.ctx, job, { scheduledFor: now, instanceId: "a" })).status).toBe(
      "succeeded",
    );
    const after = await db.organization.findUniqueOrThrow({ where: { id: organization.id } });
    const storage = (after.planViolations as { type: string; action: string }[]).find(
      (v) => v.type === "storage",
    );
    expect(storage?.action).toBe("read_only");
    expect(
      await db.notification.count({ where: { organizationId: organization.id } }),
    ).toBeGreaterThanOrEqual(2);
  });

  it("checkStorageGracePeriods queues 'storage grace ending' once, within 24 h of the end, and not after it is resolved", async () => {
    clock.set(Date.now());
    const now = clock.now();
    const settings = a.ctx.modules.billing.deps.settings;
    const job = a.ctx.jobs.find((candidate) => candidate.name === "checkStorageGracePeriods")!;
    // Grace ends in 20 h (detected storageGraceDays - 20 h ago), and in 3 days.
    const organizationOver = async (detectedMsAgo: number) => {
      const { organization } = await createOrganizationWithAdmin(db); // free plan: 1 GiB
      const meeting = await createMeeting(db, { organizationId: organization.id });
      await createStorageObject(db, meeting, { sizeBytes: 2n * 1024n ** 3n });
      await checkPlanViolations(
        { db, settings },
        { organizationId: organization.id, now: new Date(now.getTime() - detectedMsAgo) },
      );
      return { organization, meeting };
    };
    const soon = await organizationOver(settings.storageGraceDays * DAY - 20 * 60 * 60 * 1000);
    const later = await organizationOver((settings.storageGraceDays - 3) * DAY);
    const warnings = (organizationId: string) =>
      db.notification.findMany({
        where: { organizationId, type: "plan.storage_grace_ending" },
      });

    for (const at of [now, new Date(now.getTime() + 60 * 60 * 1000)]) {
      clock.set(at);
      const run = await runJob(a.ctx, job, { scheduledFor: at, instanceId: "a" });
      expect(run.status).toBe("succeeded");
    }
    const sent = await warnings(soon.organization.id);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ status: "sent" });
    expect(sent[0]!.payload).toMatchObject({
      planSlug: "free",
      limit: 1024 ** 3,
      current: 2 * 1024 ** 3,
    });
    expect(await warnings(later.organization.id)).toHaveLength(0);

    // Freed while a warning is still queued: the warning is skipped, the resolution is sent.
    const recorded = await db.organization.findUniqueOrThrow({
      where: { id: later.organization.id },
    });
    const storage = (recorded.planViolations as { type: string; graceEndsAt?: string }[]).find(
      (violation) => violation.type === "storage",
    )!;
    await enqueueAdminNotices({ db }, [
      {
        organizationId: later.organization.id,
        type: "plan.storage_grace_ending",
        payload: { planSlug: "free", limit: 1, current: 2, graceEndsAt: storage.graceEndsAt },
        dedupeKey: `queued-warning:${later.organization.id}`,
      },
    ]);
    await db.storageObject.deleteMany({ where: { organizationId: later.organization.id } });
    await checkPlanViolations(
      { db, settings },
      { organizationId: later.organization.id, now: clock.now() },
    );
    await a.ctx.notices.idle();
    const told = await db.notification.findMany({
      where: { organizationId: later.organization.id },
      orderBy: { createdAt: "asc" },
      select: { type: true, status: true },
    });
    expect(told).toEqual([
      { type: "plan.violation", status: "sent" },
      { type: "plan.storage_grace_ending", status: "skipped" },
      { type: "plan.violation_resolved", status: "sent" },
    ]);
  });

  it("cleanupOldWebhooks deletes exactly the records past retention, in batches", async () => {
    clock.set(Date.now());
    const now = clock.now();
    const tag = `evt_${now.getTime()}`;
    const old = Array.from({ length: 5 }, (_, i) => ({
      provider: "stripe",
      eventId: `${tag}_old_${i}`,
      eventType: "invoice.paid",
      processedAt: new Date(now.getTime() - 8 * DAY - i),
    }));
    const recent = Array.from({ length: 3 }, (_, i) => ({
      provider: "stripe",
      eventId: `${tag}_new_${i}`,
      eventType: "invoice.paid",
      processedAt: new Date(now.getTime() - 6 * DAY),
    }));
    await db.processedWebhook.createMany({ data: [...old, ...recent] });
    const job = a.ctx.jobs.find((candidate) => candidate.name === "cleanupOldWebhooks")!;
    const outcome = await runJob(a.ctx, job, { scheduledFor: now, instanceId: "a" });
    expect(outcome).toMatchObject({ status: "succeeded", rowsAffected: 5 });
    const left = await db.processedWebhook.findMany({ where: { eventId: { startsWith: tag } } });
    expect(left.map((row) => row.eventId).sort()).toEqual(recent.map((row) => row.eventId).sort());
  });
});
