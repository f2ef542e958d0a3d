import type { PrismaClient } from "@zigznote/database";
import {
  createMeeting,
  createMembership,
  createStorageObject,
  createUser,
} from "@zigznote/database/testing";
import request from "supertest";
import { checkPlanViolations } from "../../../src/billing";
import { transaction } from "../../../src/lib/afterCommit";
import { cleanupOrphanedStorage } from "../../../src/recordings";
import { authHeaderFor, signClerkToken, type AuthenticatedCaller } from "../../support/auth";
import { startFakeClerk, type FakeClerk } from "../../support/fakes/clerkServer";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";

/**
 * Issue 22, "one truth" and "soft-deleted and purged rows": the organization endpoint, the
 * plan-change preview, the recorded violations, the admin console's organization page and the
 * write guard's refusals all show the same usage, counted by one definition:
 * - meetings of the month: every meeting created in the current UTC month, live, deleted or
 *   purged (a meeting counts for the month it was created in); none of earlier months;
 * - members: memberships of users that are not deleted, plus seats reserved by adds through our
 *   API that have not expired;
 * - storage: the live meetings' stored objects; a deleted meeting's stop counting when it is
 *   deleted, not when the purge deletes them weeks later.
 */

const NOW = new Date("2026-11-15T12:00:00.000Z");
const DAY = 24 * 60 * 60 * 1000;

describe("usage: one definition for every reader and the guard", () => {
  let clerk: FakeClerk;
  let clock: ManualClock;
  let testApp: TestApp;
  let db: PrismaClient;
  let caller: AuthenticatedCaller;
  let adminHeaders: { Authorization: string };
  const headers = () => ({
    Authorization: `Bearer ${signClerkToken({ userId: caller.userClerkId, orgId: caller.orgClerkId })}`,
  });

  beforeAll(async () => {
    clerk = await startFakeClerk();
    clock = new ManualClock(NOW);
    testApp = createTestApp({
      clock,
      env: {
        CLERK_API_URL: clerk.baseUrl,
        CLERK_SECRET_KEY: clerk.secretKey,
        STORAGE_PURGE_AFTER_DAYS: "1",
      },
    });
    db = testApp.ctx.db;
    caller = await authHeaderFor(testApp);
    clerk.addOrganization(caller.orgClerkId);
    const organizationId = caller.organizationId;
    const platformAdmin = await authHeaderFor(testApp);
    adminHeaders = {
      Authorization: `Bearer ${signClerkToken({
        userId: platformAdmin.userClerkId,
        orgId: platformAdmin.orgClerkId,
        expiresInSeconds: 3600,
        claims: { metadata: { platformAdmin: true } },
      })}`,
    };
    await db.organization.update({ where: { id: organizationId }, data: { planSlug: "pro" } });

    // Meetings: 7 live and 2 deleted this month, 1 deleted and purged this month (by the job
    // below), 3 of last month.
    const live = [];
    for (let i = 0; i < 7; i += 1) {
      live.push(
        await createMeeting(db, {
          organizationId,
          createdAt: new Date(NOW.getTime() - i * 3600_000),
        }),
      );
    }
    for (let i = 0; i < 2; i += 1) {
      await createMeeting(db, { organizationId, createdAt: NOW, deletedAt: NOW });
    }
    const purged = await createMeeting(db, {
      organizationId,
      createdAt: new Date("2026-11-02T09:00:00.000Z"),
      deletedAt: new Date("2026-11-03T09:00:00.000Z"),
    });
    for (let i = 0; i < 3; i += 1) {
      await createMeeting(db, { organizationId, createdAt: new Date("2026-10-20T09:00:00.000Z") });
    }
    // Storage: 300 bytes on live meetings, 50 on a deleted one (stored until its purge, counted
    // no more), 1000 on the meeting the purge removes.
    await createStorageObject(db, live[0]!, { sizeBytes: 100n });
    await createStorageObject(db, live[1]!, { sizeBytes: 200n });
    const deletedLater = await createMeeting(db, {
      organizationId,
      createdAt: new Date("2026-10-10T09:00:00.000Z"),
      deletedAt: new Date(NOW.getTime() - 3600_000),
    });
    await createStorageObject(db, deletedLater, { sizeBytes: 50n });
    await createStorageObject(db, purged, { sizeBytes: 1000n });
    const purge = await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, {
      now: clock.now(),
    });
    expect(purge.rowsAffected).toBeGreaterThan(0);
    expect((await db.meeting.findUniqueOrThrow({ where: { id: purged.id } })).purgedAt).not.toBe(
      null,
    );
    // Deleted an hour ago: its object is still stored (purged after a day), yet counts no more.
    expect(await db.storageObject.count({ where: { meetingId: deletedLater.id } })).toBe(1);

    // Members: the admin and 2 more, one whose user was deleted (not counted), a seat reserved
    // by an add in progress (counted) and an expired one (not counted).
    for (let i = 0; i < 2; i += 1) {
      const user = await createUser(db);
      await createMembership(db, { organizationId, userId: user.id });
    }
    const gone = await createUser(db, { deletedAt: new Date(NOW.getTime() - DAY) });
    await createMembership(db, { organizationId, userId: gone.id });
    await db.memberReservation.create({
      data: {
        organizationId,
        clerkUserId: "user_beingadded",
        expiresAt: new Date(NOW.getTime() + 60_000),
      },
    });
    await db.memberReservation.create({
      data: {
        organizationId,
        clerkUserId: "user_neveranswered",
        expiresAt: new Date(NOW.getTime() - 60_000),
      },
    });

    // The downgrade, as a plan change records it.
    await transaction(db, async (tx) => {
      await tx.organization.update({ where: { id: organizationId }, data: { planSlug: "free" } });
      await checkPlanViolations(
        { db: tx, settings: testApp.ctx.modules.billing.deps.settings },
        { organizationId, now: clock.now() },
      );
    });
  });
  afterAll(async () => {
    await testApp.close();
    await clerk.close();
  });

  const expected = { meetingsThisMonth: 10, teamMembers: 4, storageBytes: 300 };

  it("GET /api/v1/organization shows the month's meetings with deleted and purged ones, members with live seats", async () => {
    const response = await request(testApp.app).get("/api/v1/organization").set(headers());
    expect(response.status).toBe(200);
    expect(response.body.usage).toEqual(expected);
  });

  it("the recorded violations, GET /api/v1/billing/preview and the console's organization page agree", async () => {
    const response = await request(testApp.app).get("/api/v1/organization").set(headers());
    const byType = Object.fromEntries(
      (response.body.violations as { type: string; current: number; limit: number }[]).map(
        (violation) => [violation.type, [violation.current, violation.limit]],
      ),
    );
    // Free: 10 meetings (not over at 10), 3 members (over at 4), 1 GiB.
    expect(byType).toEqual({ team_members: [4, 3] });

    const preview = await request(testApp.app)
      .get("/api/v1/billing/preview?planSlug=free")
      .set(headers());
    expect(preview.status).toBe(200);
    expect(
      (preview.body.violations as { type: string; current: number }[]).map((v) => [
        v.type,
        v.current,
      ]),
    ).toEqual([["team_members", 4]]);

    const detail = await request(testApp.app)
      .get(`/api/v1/admin/organizations/${caller.organizationId}`)
      .set(adminHeaders);
    expect(detail.status).toBe(200);
    expect(detail.body.usage).toEqual([
      { limit: "meetingsPerMonth", used: 10, max: 10 },
      { limit: "teamMembers", used: 4, max: 3 },
      { limit: "storageBytes", used: 300, max: 1024 ** 3 },
    ]);
  });

  it("the write guard refuses with the same figures: deleted and purged meetings still count", async () => {
    const meeting = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(headers())
      .send({ title: "One more", meetingUrl: "https://zoom.us/j/81234567890" });
    expect(meeting.status).toBe(403);
    expect(meeting.body.error).toMatchObject({
      code: "PLAN_LIMIT_MEETINGS",
      details: { limit: 10, current: 10, planSlug: "free" },
    });

    clerk.addUser("user_newcomer");
    const member = await request(testApp.app)
      .post("/api/v1/members")
      .set(headers())
      .send({ userId: "user_newcomer" });
    expect(member.status).toBe(403);
    expect(member.body.error).toMatchObject({
      code: "PLAN_LIMIT_TEAM_MEMBERS",
      details: { limit: 3, current: 4, planSlug: "free" },
    });
    expect(clerk.requests).toHaveLength(0);
  });

  it("deleting a meeting frees nothing this month; the next month starts from zero", async () => {
    const live = await db.meeting.findFirstOrThrow({
      where: { organizationId: caller.organizationId, deletedAt: null, createdAt: { gte: NOW } },
    });
    const deleted = await request(testApp.app).delete(`/api/v1/meetings/${live.id}`).set(headers());
    expect(deleted.status).toBe(204);
    const after = await request(testApp.app).get("/api/v1/organization").set(headers());
    expect(after.body.usage.meetingsThisMonth).toBe(10);
    const refused = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(headers())
      .send({ title: "Still no", meetingUrl: "https://zoom.us/j/81234567891" });
    expect(refused.status).toBe(403);

    clock.set(new Date("2026-12-01T00:00:00.000Z"));
    const december = await request(testApp.app).get("/api/v1/organization").set(headers());
    expect(december.body.usage.meetingsThisMonth).toBe(0);
    const created = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(headers())
      .send({ title: "December", meetingUrl: "https://zoom.us/j/81234567892" });
    expect(created.status).toBe(201);
    // Created at the app's clock: it counts for December, where the guard counted it.
    expect(created.body.createdAt).toBe("2026-12-01T00:00:00.000Z");
    const counted = await request(testApp.app).get("/api/v1/organization").set(headers());
    expect(counted.body.usage.meetingsThisMonth).toBe(1);
  });
});
