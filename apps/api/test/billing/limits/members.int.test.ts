import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createMembership, createSubscription, createUser } from "@zigznote/database/testing";
import request from "supertest";
import { SEAT_RESERVATION_MS } from "../../../src/identity";
import {
  apiKeyHeaderFor,
  authHeaderFor,
  signClerkToken,
  type AuthenticatedCaller,
} from "../../support/auth";
import { startFakeClerk, type FakeClerk } from "../../support/fakes/clerkServer";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";
import { closeServer, listen } from "../../support/recallEvents";
import { newSvixSecret, svixHeaders } from "../../support/webhookSigning";

/**
 * `POST /api/v1/members`: adding a member at Clerk within the plan's team member limit. A seat
 * is reserved under the organization's lock before Clerk is called (the concurrent proof is in
 * concurrentCreates.int.test.ts); these tests follow the seat through Clerk's answers and its
 * webhook. Clerk is the local fake, reached by the real `@clerk/backend` SDK; webhooks are
 * signed with a secret the test owns.
 */
describe("POST /api/v1/members", () => {
  const webhookSecret = newSvixSecret();
  let clerk: FakeClerk;
  let clock: ManualClock;
  let testApp: TestApp;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    clerk = await startFakeClerk();
    clock = new ManualClock();
    testApp = createTestApp({
      clock,
      env: {
        CLERK_API_URL: clerk.baseUrl,
        CLERK_SECRET_KEY: clerk.secretKey,
        CLERK_TIMEOUT_MS: "300",
        CLERK_WEBHOOK_SECRET: webhookSecret,
      },
    });
    ({ server, url } = await listen(testApp.app));
  });
  afterAll(async () => {
    await closeServer(server);
    await testApp.close();
    await clerk.close();
  });

  const db = () => testApp.ctx.db;
  const newClerkUser = () => {
    const id = `user_${randomUUID().replace(/-/g, "")}`;
    clerk.addUser(id, { firstName: "Ada", lastName: "Lovelace" });
    return id;
  };
  /** An organization (free: 3 members) known to Clerk, with its admin and `extra` members. */
  async function organization(extra = 0): Promise<AuthenticatedCaller> {
    const caller = await authHeaderFor(testApp);
    clerk.addOrganization(caller.orgClerkId);
    for (let i = 0; i < extra; i += 1) {
      const user = await createUser(db());
      await createMembership(db(), { organizationId: caller.organizationId, userId: user.id });
    }
    return caller;
  }
  const add = (caller: AuthenticatedCaller, body: Record<string, unknown>) =>
    request(testApp.app)
      .post("/api/v1/members")
      .set({
        Authorization: `Bearer ${signClerkToken({ userId: caller.userClerkId, orgId: caller.orgClerkId })}`,
      })
      .send(body);
  const members = async (caller: AuthenticatedCaller) =>
    (await request(testApp.app).get("/api/v1/organization").set(caller.headers)).body.usage
      .teamMembers as number;
  const seats = (caller: AuthenticatedCaller) =>
    db().memberReservation.count({ where: { organizationId: caller.organizationId } });
  const creates = () => clerk.requests.filter((r) => r.method === "POST").length;

  it("adds the user at Clerk and records the membership; Clerk's webhook for it changes nothing", async () => {
    const caller = await organization();
    const userId = newClerkUser();
    const response = await add(caller, { userId, role: "admin" });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({
      id: expect.any(String),
      organizationId: caller.organizationId,
      userId: expect.any(String),
      clerkUserId: userId,
      clerkMembershipId: expect.stringMatching(/^orgmem_/),
      role: "admin",
    });
    const sent = clerk.requests.at(-1)!;
    expect(sent.path).toBe(`/v1/organizations/${caller.orgClerkId}/memberships`);
    expect(sent.body).toEqual({ user_id: userId, role: "org:admin" });
    const membership = await db().membership.findUniqueOrThrow({
      where: { id: response.body.id },
      include: { user: true },
    });
    expect(membership).toMatchObject({ role: "admin", clerkId: response.body.clerkMembershipId });
    expect(membership.user).toMatchObject({ clerkId: userId, firstName: "Ada" });
    expect(await seats(caller)).toBe(0);
    expect(await members(caller)).toBe(2);

    // Clerk's webhook for the same membership: applied once, counted once.
    const body = JSON.stringify({
      type: "organizationMembership.created",
      object: "event",
      data: clerk.memberships.at(-1),
    });
    const delivered = await fetch(`${url}/webhooks/clerk`, {
      method: "POST",
      headers: svixHeaders(webhookSecret, `msg_${randomUUID()}`, body),
      body,
    });
    expect(delivered.status).toBe(200);
    expect(await members(caller)).toBe(2);
    expect(await db().membership.count({ where: { organizationId: caller.organizationId } })).toBe(
      2,
    );
  });

  it("refuses at the limit with 403 PLAN_LIMIT_TEAM_MEMBERS before Clerk is asked", async () => {
    const caller = await organization(2);
    const before = creates();
    const response = await add(caller, { userId: newClerkUser() });
    expect(response.status).toBe(403);
    expect(response.body.error).toMatchObject({
      code: "PLAN_LIMIT_TEAM_MEMBERS",
      details: { limit: 3, current: 3, planSlug: "free" },
    });
    expect(creates()).toBe(before);
    expect(await seats(caller)).toBe(0);
  });

  it("refuses an unknown field with 400, naming it, before Clerk is asked or a seat is taken", async () => {
    const caller = await organization();
    const before = creates();
    const response = await add(caller, { userId: newClerkUser(), rol: "admin" });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: "VALIDATION_ERROR",
      details: {
        fields: [{ message: expect.stringContaining('"rol"'), code: "unrecognized_keys" }],
      },
    });
    expect(creates()).toBe(before);
    expect(await seats(caller)).toBe(0);
    expect(await members(caller)).toBe(1);
  });

  it("answers 409 ALREADY_MEMBER for a member, without asking Clerk", async () => {
    const caller = await organization();
    const before = creates();
    const response = await add(caller, { userId: caller.userClerkId });
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe("ALREADY_MEMBER");
    expect(creates()).toBe(before);
  });

  it("frees the seat when Clerk has no such user (404 CLERK_USER_NOT_FOUND) or refuses (502 CLERK_REJECTED)", async () => {
    const caller = await organization(1);
    const unknown = await add(caller, { userId: "user_nobodyknowsme" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({
      code: "CLERK_USER_NOT_FOUND",
      details: { userId: "user_nobodyknowsme" },
    });
    clerk.failNext({ status: 403, code: "organization_membership_quota_exceeded" });
    const refused = await add(caller, { userId: newClerkUser() });
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatchObject({
      code: "CLERK_REJECTED",
      details: { clerkStatus: 403, clerkCode: "organization_membership_quota_exceeded" },
    });
    expect(await seats(caller)).toBe(0);
    expect(await members(caller)).toBe(2);
  });

  it("keeps the seat while Clerk's outcome is unknown; a retry of the same user takes it, even at the limit", async () => {
    const caller = await organization(1); // 2 of 3
    const userId = newClerkUser();
    clerk.failNext({ status: 503 });
    const down = await add(caller, { userId });
    expect(down.status).toBe(502);
    expect(down.body.error.code).toBe("CLERK_UNAVAILABLE");
    expect(await seats(caller)).toBe(1);
    expect(await members(caller)).toBe(3);
    // The seat is taken: someone else is refused...
    const other = await add(caller, { userId: newClerkUser() });
    expect(other.status).toBe(403);
    // ...and the same user goes through, on the seat it holds.
    const retry = await add(caller, { userId });
    expect(retry.status).toBe(201);
    expect(await seats(caller)).toBe(0);
    expect(await members(caller)).toBe(3);
  });

  it("counts a timed-out add until its seat expires", async () => {
    const caller = await organization(1);
    clerk.failNext({ hang: true });
    const timedOut = await add(caller, { userId: newClerkUser() });
    expect(timedOut.status).toBe(502);
    expect(timedOut.body.error.code).toBe("CLERK_UNAVAILABLE");
    expect(await members(caller)).toBe(3);
    clock.advance(SEAT_RESERVATION_MS + 1);
    expect(await members(caller)).toBe(2);
    const next = await add(caller, { userId: newClerkUser() });
    expect(next.status).toBe(201);
    clock.set(Date.now());
  });

  it("answers 409 when Clerk already has the membership, and keeps the seat until its webhook", async () => {
    const caller = await organization();
    const userId = newClerkUser();
    // A membership made in Clerk's dashboard whose webhook has not arrived yet.
    const first = await add(caller, { userId });
    expect(first.status).toBe(201);
    await db().membership.delete({ where: { id: first.body.id } });
    const again = await add(caller, { userId });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("ALREADY_MEMBER");
    expect(await seats(caller)).toBe(1);
    const body = JSON.stringify({
      type: "organizationMembership.updated",
      object: "event",
      data: { ...clerk.memberships.at(-1)!, updated_at: Date.now() },
    });
    const delivered = await fetch(`${url}/webhooks/clerk`, {
      method: "POST",
      headers: svixHeaders(webhookSecret, `msg_${randomUUID()}`, body),
      body,
    });
    expect(delivered.status).toBe(200);
    expect(await seats(caller)).toBe(0);
    expect(await members(caller)).toBe(2);
  });

  it("is for an admin's session: members and API keys are refused, a suspended organization gets 402", async () => {
    const caller = await organization();
    const member = await authHeaderFor(testApp, {
      role: "member",
      organizationId: caller.organizationId,
    });
    const asMember = await request(testApp.app)
      .post("/api/v1/members")
      .set(member.headers)
      .send({ userId: newClerkUser() });
    expect(asMember.status).toBe(403);
    expect(asMember.body.error.code).toBe("ADMIN_REQUIRED");
    const key = await apiKeyHeaderFor(testApp, {
      scopes: ["meetings:write"],
      organizationId: caller.organizationId,
    });
    const asKey = await request(testApp.app)
      .post("/api/v1/members")
      .set(key.headers)
      .send({ userId: newClerkUser() });
    expect(asKey.status).toBe(403);
    expect(asKey.body.error.code).toBe("ADMIN_REQUIRED");

    const invalid = await add(caller, { userId: "someone@example.com" });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("VALIDATION_ERROR");

    await createSubscription(db(), { organizationId: caller.organizationId, status: "suspended" });
    const before = creates();
    const suspended = await add(caller, { userId: newClerkUser() });
    expect(suspended.status).toBe(402);
    expect(suspended.body.error.code).toBe("SUBSCRIPTION_SUSPENDED");
    expect(creates()).toBe(before);
    expect(await seats(caller)).toBe(0);
  });

  it("answers 503 PROVIDER_NOT_CONFIGURED without CLERK_SECRET_KEY, writing nothing", async () => {
    const bare = createTestApp();
    try {
      const caller = await authHeaderFor(bare);
      const response = await request(bare.app)
        .post("/api/v1/members")
        .set(caller.headers)
        .send({ userId: "user_abc" });
      expect(response.status).toBe(503);
      expect(response.body.error).toMatchObject({
        code: "PROVIDER_NOT_CONFIGURED",
        details: { provider: "clerk", variables: ["CLERK_SECRET_KEY"] },
      });
      expect(
        await bare.ctx.db.memberReservation.count({
          where: { organizationId: caller.organizationId },
        }),
      ).toBe(0);
    } finally {
      await bare.close();
    }
  });
});
