import {
  createOrganization,
  createOrganizationWithAdmin,
  uniqueSuffix,
} from "@zigznote/database/testing";
import request from "supertest";
import { ManualClock } from "../../src/lib/clock";
import {
  apiKeyHeaderFor,
  authHeaderFor,
  platformAdminHeadersFor,
  signClerkToken,
} from "../support/auth";
import { clerkUserData } from "../support/clerkFixtures";
import { createTestApp, type TestApp } from "../support/helpers";
import { newSvixSecret, svixHeaders } from "../support/webhookSigning";

/**
 * What the console shows of people, plans and schedules: the admin API names actors and members
 * as Clerk described them (its user webhooks, or the first session token's claims), counts
 * organizations by plan and status together, and says when each job runs next.
 */

// 12:02:30 UTC (between two */5 ticks, after the day's 03:00 and 04:00 jobs) of a past day:
// manual job runs never sort before the runs other test files make now. A manual run's tick is
// its start, one run per job and tick (409 JOB_ALREADY_RUNNING otherwise), and the worker's
// database keeps job runs from earlier `jest` runs: a random day alone meets an earlier run's
// rows once in 8000 runs per earlier run (1% after 80), so the day's runs are cleared first.
const DAY_MS = 24 * 60 * 60 * 1000;
const DAY = Date.UTC(2000, 0, 1) + Math.floor(Math.random() * 8000) * DAY_MS;
const at = (days: number, hours: number, minutes: number) =>
  new Date(DAY + days * DAY_MS + (hours * 60 + minutes) * 60_000).toISOString();
const START = new Date(DAY + (12 * 60 + 2.5) * 60_000);
const secret = newSvixSecret();
let clock: ManualClock;
let testApp: TestApp;
beforeAll(async () => {
  clock = new ManualClock(START);
  testApp = createTestApp({ clock, env: { CLERK_WEBHOOK_SECRET: secret } });
  // Only this suite runs jobs on these days, and no other suite uses this worker's database now.
  await testApp.ctx.db.jobRun.deleteMany({
    where: { scheduledFor: { gte: new Date(DAY), lt: new Date(DAY + DAY_MS) } },
  });
});
afterAll(() => testApp.close());

/** A platform admin (by the session claim) in an organization of its own. */
async function platformAdmin() {
  const caller = await authHeaderFor(testApp);
  return { ...caller, adminHeaders: platformAdminHeadersFor(caller) };
}

/** Clerk's `user.created` / `user.updated` for `clerkId`, signed and delivered to the API. */
async function deliverUser(
  type: "user.created" | "user.updated",
  clerkId: string,
  fields: { email: string; firstName: string; lastName: string; username?: string | null },
  updatedAt: number,
) {
  const data = {
    ...clerkUserData({ id: clerkId, createdAt: updatedAt - 1000, updatedAt, ...fields }),
    username: fields.username ?? null,
  };
  const body = JSON.stringify({
    data,
    object: "event",
    type,
    timestamp: updatedAt,
    instance_id: "ins_test",
  });
  const res = await request(testApp.app)
    .post("/webhooks/clerk")
    .set(svixHeaders(secret, `msg_${uniqueSuffix()}`, body))
    .send(body);
  expect(res.status).toBe(200);
}

describe("GET /api/v1/admin/audit-log", () => {
  it("names the actor as Clerk described them, and a job target by its whole name", async () => {
    const admin = await platformAdmin();
    const t = Date.now();
    await deliverUser(
      "user.updated",
      admin.userClerkId,
      {
        email: `olive-${uniqueSuffix()}@ops.example`,
        firstName: "Olive",
        lastName: "Ops",
        username: "olive",
      },
      t,
    );
    const run = await request(testApp.app)
      .post("/api/v1/admin/jobs/recheckPlanViolations/run")
      .set(admin.adminHeaders)
      .send({ reason: "after the price change" });
    expect(run.status).toBe(200);
    clock.advance(1000);
    const { organization } = await createOrganizationWithAdmin(testApp.ctx.db, {
      name: `Named ${uniqueSuffix()}`,
    });
    const recheck = await request(testApp.app)
      .post(`/api/v1/admin/organizations/${organization.id}/recheck-violations`)
      .set(admin.adminHeaders)
      .send({ reason: "customer asked" });
    expect(recheck.status).toBe(200);

    const log = await request(testApp.app)
      .get("/api/v1/admin/audit-log")
      .query({ actorUserId: admin.userId })
      .set(admin.adminHeaders);
    expect(log.status).toBe(200);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { id: admin.userId } });
    const actor = {
      userId: admin.userId,
      clerkId: admin.userClerkId,
      email: user.email,
      name: "Olive Ops",
      username: "olive",
    };
    expect(user.email).toMatch(/^olive-.*@ops\.example$/);
    const jobTarget = {
      actor,
      targetType: "job",
      targetId: "recheckPlanViolations",
      organizationId: null,
      organizationName: null,
    };
    expect(log.body.data).toEqual([
      expect.objectContaining({
        action: "organization.recheck_violations",
        actor,
        actorEmail: user.email,
        targetType: "organization",
        targetId: organization.id,
        organizationName: organization.name,
      }),
      // A run is recorded twice: who asked, before it started; then its outcome, above it.
      expect.objectContaining({ action: "job.run", ...jobTarget }),
      expect.objectContaining({ action: "job.run_requested", ...jobTarget }),
    ]);
  });

  it("has only the Clerk id of an actor Clerk told nothing else about", async () => {
    // Met first through a session token without profile claims, never described by a webhook.
    const orgClerkId = `org_${uniqueSuffix()}`;
    await createOrganization(testApp.ctx.db, { clerkId: orgClerkId });
    const userClerkId = `user_${uniqueSuffix()}`;
    const headers = {
      Authorization: `Bearer ${signClerkToken({
        userId: userClerkId,
        orgId: orgClerkId,
        claims: { platform_admin: true },
      })}`,
    };
    const run = await request(testApp.app)
      .post("/api/v1/admin/jobs/deliverNotifications/run")
      .set(headers)
      .send({ reason: "nameless operator" });
    expect(run.status).toBe(200);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { clerkId: userClerkId } });
    const log = await request(testApp.app)
      .get("/api/v1/admin/audit-log")
      .query({ actorUserId: user.id })
      .set(headers);
    // The run's request and its outcome.
    expect(log.body.data).toHaveLength(2);
    for (const entry of log.body.data) {
      expect(entry.actor).toEqual({
        userId: user.id,
        clerkId: userClerkId,
        email: null,
        name: null,
        username: null,
      });
    }
  });
});

describe("GET /api/v1/admin/organizations/:id members", () => {
  it("lists e-mail and name as Clerk gave them: token claims first, then its user webhooks", async () => {
    const admin = await platformAdmin();
    const orgClerkId = `org_${uniqueSuffix()}`;
    const organization = await createOrganization(testApp.ctx.db, { clerkId: orgClerkId });

    // Two members met first through their session tokens: one token carries the profile claims
    // of the README's session-token template, the other none.
    const ada = `user_ada_${uniqueSuffix()}`;
    const ben = `user_ben_${uniqueSuffix()}`;
    const me = async (userId: string, claims: Record<string, unknown>, role = "org:admin") => {
      const res = await request(testApp.app)
        .get("/api/v1/me")
        .set({
          Authorization: `Bearer ${signClerkToken({ userId, orgId: orgClerkId, orgRole: role, claims })}`,
        });
      expect(res.status).toBe(200);
      return res.body as { user: { email: string | null }; isPlatformAdmin: boolean };
    };
    const adaMe = await me(ada, {
      email: "ada@example.test",
      first_name: "Ada",
      last_name: "Lovelace",
      username: null,
    });
    expect(adaMe.user.email).toBe("ada@example.test");
    expect(adaMe.isPlatformAdmin).toBe(false);
    await me(ben, {}, "org:member");

    const detail = async () => {
      const res = await request(testApp.app)
        .get(`/api/v1/admin/organizations/${organization.id}`)
        .set(admin.adminHeaders);
      expect(res.status).toBe(200);
      return res.body.members as Record<string, unknown>[];
    };
    expect(await detail()).toEqual([
      expect.objectContaining({
        clerkId: ada,
        email: "ada@example.test",
        name: "Ada Lovelace",
        username: null,
        role: "admin",
      }),
      expect.objectContaining({ clerkId: ben, email: null, name: null, role: "member" }),
    ]);

    // Clerk's webhooks fill in the second and later change the first: the newer event wins,
    // what it no longer has (a username) is cleared.
    const t = Date.now();
    await deliverUser(
      "user.created",
      ben,
      { email: "ben@example.test", firstName: "Ben", lastName: "Okafor", username: "benok" },
      t,
    );
    await deliverUser(
      "user.updated",
      ben,
      { email: "ben@example.test", firstName: "Benjamin", lastName: "", username: null },
      t + 1000,
    );
    await deliverUser(
      "user.updated",
      ada,
      { email: "ada@lovelace.example", firstName: "Ada", lastName: "King", username: "ada" },
      t,
    );
    // An older event arriving late changes nothing.
    await deliverUser(
      "user.created",
      ben,
      { email: "stale@example.test", firstName: "Stale", lastName: "Stale", username: "stale" },
      t - 5000,
    );
    expect(await detail()).toEqual([
      expect.objectContaining({
        clerkId: ada,
        email: "ada@lovelace.example",
        name: "Ada King",
        username: "ada",
      }),
      expect.objectContaining({
        clerkId: ben,
        email: "ben@example.test",
        name: "Benjamin",
        username: null,
      }),
    ]);
  });
});

describe("GET /api/v1/me", () => {
  it("says whether the caller is a platform admin (never an API key)", async () => {
    const admin = await platformAdmin();
    const asAdmin = await request(testApp.app).get("/api/v1/me").set(admin.adminHeaders);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toMatchObject({ kind: "user", isPlatformAdmin: true, role: "admin" });
    const member = await authHeaderFor(testApp, { role: "member" });
    const asMember = await request(testApp.app).get("/api/v1/me").set(member.headers);
    expect(asMember.body.isPlatformAdmin).toBe(false);
    const key = await apiKeyHeaderFor(testApp, {
      scopes: ["meetings:read"],
      organizationId: admin.organizationId,
    });
    const asKey = await request(testApp.app).get("/api/v1/me").set(key.headers);
    expect(asKey.body).toMatchObject({ kind: "apiKey", isPlatformAdmin: false });
  });
});

describe("GET /api/v1/admin/overview and /jobs", () => {
  it("counts organizations by plan, each split by status", async () => {
    const admin = await platformAdmin();
    const read = async () =>
      (await request(testApp.app).get("/api/v1/admin/overview").set(admin.adminHeaders)).body
        .organizations as {
        total: number;
        byPlan: {
          planSlug: string;
          count: number;
          byStatus: { active: number; deleted: number };
        }[];
      };
    const before = await read();
    await createOrganization(testApp.ctx.db, { planSlug: "pro" });
    await createOrganization(testApp.ctx.db, { planSlug: "pro", status: "deleted" });
    const after = await read();
    const pro = (body: typeof before) =>
      body.byPlan.find((row) => row.planSlug === "pro") ?? {
        count: 0,
        byStatus: { active: 0, deleted: 0 },
      };
    expect(pro(after).count).toBe(pro(before).count + 2);
    expect(pro(after).byStatus).toEqual({
      active: pro(before).byStatus.active + 1,
      deleted: pro(before).byStatus.deleted + 1,
    });
    for (const row of after.byPlan) {
      expect(row.byStatus.active + row.byStatus.deleted).toBe(row.count);
    }
    expect(after.byPlan.reduce((sum, row) => sum + row.count, 0)).toBe(after.total);
  });

  it("says when each job runs next, from its schedule in CRON_TIMEZONE", async () => {
    const admin = await platformAdmin();
    const jobs = await request(testApp.app).get("/api/v1/admin/jobs").set(admin.adminHeaders);
    expect(jobs.status).toBe(200);
    const next = Object.fromEntries(
      (jobs.body.data as { name: string; nextRunAt: string; timezone: string }[]).map((job) => [
        job.name,
        job.nextRunAt,
      ]),
    );
    expect(jobs.body.data[0].timezone).toBe("UTC");
    // The instant the next runs are reckoned from (the console says "in 2 min 30 s" from it).
    expect(jobs.body.generatedAt).toBe(clock.now().toISOString());
    expect(next).toMatchObject({
      cleanupOrphanedBots: at(0, 12, 5),
      deliverNotifications: at(0, 12, 3),
      checkStorageGracePeriods: at(0, 12, 10),
      checkExpiredGracePeriods: at(0, 13, 0),
      cleanupOldWebhooks: at(1, 3, 0),
      recheckPlanViolations: at(1, 0, 5),
    });
    const overview = await request(testApp.app)
      .get("/api/v1/admin/overview")
      .set(admin.adminHeaders);
    expect(
      overview.body.jobs.find((job: { jobName: string }) => job.jobName === "cleanupOrphanedBots")
        .nextRunAt,
    ).toBe(at(0, 12, 5));
    // The app's clock decides "now": an hour later, the next runs move with it.
    clock.advance(60 * 60 * 1000);
    const later = await request(testApp.app).get("/api/v1/admin/jobs").set(admin.adminHeaders);
    expect(
      later.body.data.find((job: { name: string }) => job.name === "cleanupOrphanedBots").nextRunAt,
    ).toBe(at(0, 13, 5));
  });
});
