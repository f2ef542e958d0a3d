import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { signClerkToken } from "../support/auth";
import { clerkMembershipData, deliverClerkEvent } from "../support/clerkEvents";
import { createTestApp, type TestApp } from "../support/helpers";
import { newSvixSecret } from "../support/webhookSigning";

/**
 * A signed-in user whose membership Clerk changed a moment ago: the session token (valid for
 * 60 s) still carries the organization, but Clerk's webhook about the change is newer than it.
 */

const secret = newSvixSecret();
let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp({ env: { CLERK_WEBHOOK_SECRET: secret } });
});
afterAll(() => testApp.close());

const me = (token: string) =>
  request(testApp.app).get("/api/v1/me").set("Authorization", `Bearer ${token}`);

function membershipCount(userId: string, orgId: string): Promise<number> {
  return testApp.ctx.db.membership.count({
    where: { user: { clerkId: userId }, organization: { clerkId: orgId } },
  });
}

/** A member of a new organization, known through Clerk's webhook `ageMs` ago. */
async function memberOfNewOrganization(role: string, ageMs = 40_000) {
  const userId = `user_${uniqueSuffix()}`;
  const orgId = `org_${uniqueSuffix()}`;
  const membershipId = `orgmem_${uniqueSuffix()}`;
  const createdAt = Date.now() - ageMs;
  const created = await deliverClerkEvent(testApp.app, secret, {
    type: "organizationMembership.created",
    data: clerkMembershipData({
      id: membershipId,
      organizationId: orgId,
      userId,
      role,
      at: createdAt,
    }),
    timestamp: createdAt,
  });
  expect(created.status).toBe(200);
  return { userId, orgId, membershipId, role };
}

function removal(
  member: { userId: string; orgId: string; membershipId: string; role: string },
  at: number,
) {
  return deliverClerkEvent(testApp.app, secret, {
    type: "organizationMembership.deleted",
    data: clerkMembershipData({
      id: member.membershipId,
      organizationId: member.orgId,
      userId: member.userId,
      role: member.role,
      at,
    }),
    timestamp: at,
  });
}

describe("a session token issued before the user was removed from its organization", () => {
  it("is refused with 403 MEMBERSHIP_REMOVED and does not bring the membership back", async () => {
    const member = await memberOfNewOrganization("org:member");
    const token = signClerkToken({
      userId: member.userId,
      orgId: member.orgId,
      orgRole: "org:member",
      issuedAt: new Date(Date.now() - 20_000),
    });
    expect((await me(token)).status).toBe(200);

    expect((await removal(member, Date.now() - 5_000)).status).toBe(200);
    expect(await membershipCount(member.userId, member.orgId)).toBe(0);

    const res = await me(token);
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("MEMBERSHIP_REMOVED");
    expect(await membershipCount(member.userId, member.orgId)).toBe(0);
  });

  it("is refused in either layout (v1 org_id) as well", async () => {
    const member = await memberOfNewOrganization("org:admin");
    expect((await removal(member, Date.now() - 5_000)).status).toBe(200);
    const res = await me(
      signClerkToken({
        userId: member.userId,
        orgId: member.orgId,
        version: 1,
        issuedAt: new Date(Date.now() - 20_000),
      }),
    );
    expect(res.status).toBe(403);
    expect(res.body.error.code).toBe("MEMBERSHIP_REMOVED");
    expect(await membershipCount(member.userId, member.orgId)).toBe(0);
  });

  it("does not refuse a token issued after the removal (re-invited, the new membership's webhook still on its way)", async () => {
    const member = await memberOfNewOrganization("org:member");
    expect((await removal(member, Date.now() - 30_000)).status).toBe(200);
    const res = await me(
      signClerkToken({ userId: member.userId, orgId: member.orgId, orgRole: "org:member" }),
    );
    expect(res.status).toBe(200);
    expect(await membershipCount(member.userId, member.orgId)).toBe(1);
  });

  it("ends with no membership when the removal and requests with the old token race", async () => {
    for (let round = 0; round < 5; round += 1) {
      const member = await memberOfNewOrganization("org:member");
      const token = signClerkToken({
        userId: member.userId,
        orgId: member.orgId,
        orgRole: "org:member",
        issuedAt: new Date(Date.now() - 20_000),
      });
      const results = await Promise.all([
        removal(member, Date.now() - 5_000),
        ...Array.from({ length: 8 }, () => me(token)),
      ]);
      expect(results[0].status).toBe(200);
      for (const res of results.slice(1)) expect([200, 403]).toContain(res.status);
      expect(await membershipCount(member.userId, member.orgId)).toBe(0);
      expect((await me(token)).status).toBe(403);
    }
  });
});

describe("a session token issued before Clerk changed the user's role", () => {
  const roleChange = (
    member: { userId: string; orgId: string; membershipId: string },
    role: string,
    at: number,
  ) =>
    deliverClerkEvent(testApp.app, secret, {
      type: "organizationMembership.updated",
      data: clerkMembershipData({
        id: member.membershipId,
        organizationId: member.orgId,
        userId: member.userId,
        role,
        at,
      }),
      timestamp: at,
    });

  it("acts with the newer role: an admin demoted a moment ago cannot mint an API key", async () => {
    const member = await memberOfNewOrganization("org:admin");
    const token = signClerkToken({
      userId: member.userId,
      orgId: member.orgId,
      orgRole: "org:admin",
      issuedAt: new Date(Date.now() - 20_000),
    });
    expect((await me(token)).body.role).toBe("admin");

    expect((await roleChange(member, "org:member", Date.now() - 5_000)).status).toBe(200);

    const who = await me(token);
    expect(who.status).toBe(200);
    expect(who.body.role).toBe("member");
    expect(who.body.scopes).not.toContain("billing:write");
    const created = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set("Authorization", `Bearer ${token}`)
      .send({ name: "after demotion", scopes: ["meetings:read"] });
    expect(created.status).toBe(403);
    expect(created.body.error.code).toBe("ADMIN_REQUIRED");
    const organization = await testApp.ctx.db.organization.findUniqueOrThrow({
      where: { clerkId: member.orgId },
    });
    expect(await testApp.ctx.db.apiKey.count({ where: { organizationId: organization.id } })).toBe(
      0,
    );
  });

  it("keeps the token's role when the token is newer than the local copy", async () => {
    const member = await memberOfNewOrganization("org:member");
    // Promoted at Clerk; the token already says so, the webhook has not arrived yet.
    const who = await me(
      signClerkToken({ userId: member.userId, orgId: member.orgId, orgRole: "org:admin" }),
    );
    expect(who.status).toBe(200);
    expect(who.body.role).toBe("admin");
  });
});
