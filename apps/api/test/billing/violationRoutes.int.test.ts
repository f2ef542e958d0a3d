import {
  createMeeting,
  createMembership,
  createStorageObject,
  createUser,
} from "@zigznote/database/testing";
import express, { type Express } from "express";
import request from "supertest";
import type { WriteAction } from "../../src/http/auth";
import { cleanupOrphanedStorage } from "../../src/recordings";
import { authenticate } from "../../src/identity";
import { errorHandler } from "../../src/http/errorHandler";
import { OrganizationOverviewSchema } from "../../src/billing/schemas";
import { deleteRecording } from "../../src/recordings";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";

const DAY_MS = 24 * 60 * 60 * 1000;
const GIB = 1024n * 1024n * 1024n;
const ACTIONS: WriteAction[] = [
  "meeting.create",
  "bot.create",
  "recording.create",
  "member.add",
  "write",
];

let b: BillingTestApp;
/**
 * The meetings, bots and recordings routes are built elsewhere; this app puts the guard in front
 * of one stub route per action, exactly as those routes apply it (after authenticate).
 */
let guarded: Express;
beforeAll(async () => {
  b = await createBillingTestApp();
  const { ctx } = b.testApp;
  guarded = express();
  const auth = authenticate(ctx);
  for (const action of ACTIONS) {
    guarded.post(
      `/guarded/${action}`,
      auth,
      async (req, _res, next) => {
        await ctx.modules.billing.hooks.assertCanWrite(req.auth.organizationId!, action);
        next();
      },
      (_req, res) => {
        res.status(201).json({ created: true });
      },
    );
  }
  guarded.use(errorHandler(ctx.logger));
});
afterAll(() => b.close());

const api = () => request(b.testApp.app);
const db = () => b.testApp.ctx.db;

/** Status and error code of each guarded action for the caller. */
async function guardAnswers(caller: AuthenticatedCaller) {
  const answers: Record<string, string | number> = {};
  for (const action of ACTIONS) {
    const response = await request(guarded).post(`/guarded/${action}`).set(caller.headers);
    answers[action] =
      response.status === 201 ? 201 : `${response.status} ${response.body.error.code}`;
  }
  return answers;
}

const ALL_ALLOWED = Object.fromEntries(ACTIONS.map((action) => [action, 201]));

async function changePlan(caller: AuthenticatedCaller, planSlug: string | null) {
  b.clock.advance(2_000);
  const response =
    planSlug === null
      ? await api()
          .post("/api/v1/billing/subscription/cancel")
          .set(caller.headers)
          .send({ atPeriodEnd: false })
      : await api().post("/api/v1/billing/subscription").set(caller.headers).send({ planSlug });
  expect(response.status).toBe(200);
}

async function violations(caller: AuthenticatedCaller) {
  const response = await api().get("/api/v1/organization").set(caller.headers);
  expect(response.status).toBe(200);
  return OrganizationOverviewSchema.parse(response.body).violations;
}

async function addMembers(organizationId: string, count: number) {
  const users = [];
  for (let i = 0; i < count; i += 1) {
    const user = await createUser(db());
    await createMembership(db(), { organizationId, userId: user.id, role: "member" });
    users.push(user);
  }
  return users;
}

function clerkMembership(
  organization: { clerkId: string | null; name: string },
  userClerkId: string,
  membershipId: string,
  at: Date,
) {
  return {
    id: membershipId,
    object: "organization_membership",
    role: "org:member",
    organization: { id: organization.clerkId, name: organization.name, updated_at: 1 },
    public_user_data: { user_id: userClerkId },
    updated_at: at.getTime(),
  };
}

describe("meetings over the limit (read_only)", () => {
  it("is detected on the downgrade, refuses meetings and bots with 403 PLAN_LIMIT_MEETINGS, clears on upgrade", async () => {
    const admin = await authHeaderFor(b.testApp);
    await changePlan(admin, "pro");
    for (let i = 0; i < 12; i += 1) {
      await createMeeting(db(), { organizationId: admin.organizationId });
    }
    expect(await guardAnswers(admin)).toEqual(ALL_ALLOWED);

    await changePlan(admin, null); // back to free: 10 meetings a month
    expect(await violations(admin)).toEqual([
      expect.objectContaining({ type: "meetings", limit: 10, current: 12, action: "read_only" }),
    ]);
    expect(await guardAnswers(admin)).toEqual({
      ...ALL_ALLOWED,
      "meeting.create": "403 PLAN_LIMIT_MEETINGS",
      "bot.create": "403 PLAN_LIMIT_MEETINGS",
    });
    // Other writes (an API key) still go through.
    const key = await api()
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "over the meetings limit", scopes: ["meetings:read"] });
    expect(key.status).toBe(201);
    const notices = await db().notification.findMany({
      where: { organizationId: admin.organizationId, type: "plan.violation" },
    });
    expect(notices.map((notice) => (notice.payload as { type: string }).type)).toEqual([
      "meetings",
    ]);

    await changePlan(admin, "pro");
    expect(await violations(admin)).toEqual([]);
    expect(await guardAnswers(admin)).toEqual(ALL_ALLOWED);
  });
});

describe("team members over the limit (notify_admin)", () => {
  it("is detected on a business -> pro downgrade, notifies admins, refuses new members, clears when Clerk removes one", async () => {
    const admin = await authHeaderFor(b.testApp);
    await changePlan(admin, "business");
    const members = await addMembers(admin.organizationId, 15); // 16 with the admin
    await changePlan(admin, "pro"); // 15 members at most
    expect(await violations(admin)).toEqual([
      expect.objectContaining({
        type: "team_members",
        limit: 15,
        current: 16,
        action: "notify_admin",
      }),
    ]);
    expect(await guardAnswers(admin)).toEqual({
      ...ALL_ALLOWED,
      "member.add": "403 PLAN_LIMIT_TEAM_MEMBERS",
    });
    await b.testApp.ctx.notices.idle();
    const notices = await db().notification.findMany({
      where: { organizationId: admin.organizationId, type: "plan.violation" },
    });
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatchObject({ recipientUserId: admin.userId, status: "sent" });

    // Clerk removes a member: the violation is re-checked in the webhook's transaction.
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    const removed = await b.postClerkEvent(
      "organizationMembership.deleted",
      clerkMembership(organization, members[0]!.clerkId, `orgmem_${members[0]!.id}`, b.clock.now()),
    );
    expect(removed.status).toBe(200);
    expect(await violations(admin)).toEqual([]);
    // At the limit (15 of 15): still no new member.
    expect((await guardAnswers(admin))["member.add"]).toBe("403 PLAN_LIMIT_TEAM_MEMBERS");
  });

  it("is recorded when Clerk adds a member over the limit, and cleared when Clerk deletes a user", async () => {
    const admin = await authHeaderFor(b.testApp); // free: 3 members
    await addMembers(admin.organizationId, 2);
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    const newcomer = `user_new_${admin.userId}`;
    const added = await b.postClerkEvent(
      "organizationMembership.created",
      clerkMembership(organization, newcomer, `orgmem_new_${admin.userId}`, b.clock.now()),
    );
    expect(added.status).toBe(200);
    expect(await violations(admin)).toEqual([
      expect.objectContaining({ type: "team_members", limit: 3, current: 4 }),
    ]);
    await b.testApp.ctx.notices.idle();
    expect(
      await db().notification.count({
        where: { organizationId: admin.organizationId, type: "plan.violation", status: "sent" },
      }),
    ).toBe(1);

    const deleted = await b.postClerkEvent("user.deleted", {
      id: newcomer,
      object: "user",
      deleted: true,
    });
    expect(deleted.status).toBe(200);
    expect(await violations(admin)).toEqual([]);
  });
});

describe("storage over the limit (grace_period, then read_only)", () => {
  it("is detected on the downgrade with a grace period, refuses creations after it (403 PLAN_LIMIT_STORAGE), clears when a recording is deleted", async () => {
    const admin = await authHeaderFor(b.testApp);
    await changePlan(admin, "pro");
    const meeting = await createMeeting(db(), { organizationId: admin.organizationId });
    await createStorageObject(db(), meeting, { sizeBytes: 2n * GIB });

    await changePlan(admin, null); // free: 1 GiB
    const detectedAt = b.clock.now();
    expect(await violations(admin)).toEqual([
      expect.objectContaining({
        type: "storage",
        limit: Number(GIB),
        current: Number(2n * GIB),
        action: "grace_period",
        graceEndsAt: new Date(detectedAt.getTime() + 7 * DAY_MS).toISOString(),
      }),
    ]);
    expect(await guardAnswers(admin)).toEqual(ALL_ALLOWED);

    b.clock.advance(8 * DAY_MS);
    const caller = await authHeaderFor(b.testApp, { organizationId: admin.organizationId });
    expect(await guardAnswers(caller)).toEqual({
      ...ALL_ALLOWED,
      "meeting.create": "403 PLAN_LIMIT_STORAGE",
      "bot.create": "403 PLAN_LIMIT_STORAGE",
      "recording.create": "403 PLAN_LIMIT_STORAGE",
    });

    expect(
      await deleteRecording(b.testApp.ctx.modules.recordings.deps.recordings, {
        organizationId: admin.organizationId,
        meetingId: meeting.id,
      }),
    ).toBe(1);
    expect(await violations(caller)).toEqual([]);
    expect(await guardAnswers(caller)).toEqual(ALL_ALLOWED);
  });

  it("is cleared when the cleanup job purges a deleted meeting's storage", async () => {
    const admin = await authHeaderFor(b.testApp);
    await changePlan(admin, "pro");
    const meeting = await createMeeting(db(), { organizationId: admin.organizationId });
    await createStorageObject(db(), meeting, { sizeBytes: 2n * GIB });
    await changePlan(admin, null);
    expect((await violations(admin)).map((violation) => violation.type)).toEqual(["storage"]);

    const purgeDays = b.testApp.ctx.config.STORAGE_PURGE_AFTER_DAYS;
    await db().meeting.update({
      where: { id: meeting.id },
      data: { deletedAt: new Date(b.clock.now().getTime() - (purgeDays + 1) * DAY_MS) },
    });
    const result = await cleanupOrphanedStorage(b.testApp.ctx.modules.recordings.deps.purge, {
      now: b.clock.now(),
    });
    expect(result.summary).toMatchObject({ recheckFailures: 0 });
    expect(await violations(admin)).toEqual([]);
  });
});
