import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { authHeaderFor, generateTestKeyPair, signClerkToken } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp();
});
afterAll(() => testApp.close());

const me = (token: string) =>
  request(testApp.app).get("/api/v1/me").set("Authorization", `Bearer ${token}`);

describe("authenticate (Clerk session JWT)", () => {
  it("accepts a valid v2 token, provisions the caller and answers GET /api/v1/me", async () => {
    const userId = `user_${uniqueSuffix()}`;
    const orgId = `org_${uniqueSuffix()}`;
    const res = await me(signClerkToken({ userId, orgId, orgRole: "org:admin", orgSlug: "acme" }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      kind: "user",
      organization: { clerkId: orgId, name: "acme" },
      user: { clerkId: userId },
      apiKey: null,
      role: "admin",
    });
    expect(res.body.scopes).toContain("billing:write");
    const membership = await testApp.ctx.db.membership.findFirstOrThrow({
      where: { user: { clerkId: userId }, organization: { clerkId: orgId } },
    });
    expect(membership.role).toBe("admin");
  });

  it("reads the v1 claim layout (org_id / org_role) and maps org:member to member", async () => {
    const res = await me(
      signClerkToken({
        userId: `user_${uniqueSuffix()}`,
        orgId: `org_${uniqueSuffix()}`,
        orgRole: "org:member",
        version: 1,
      }),
    );
    expect(res.status).toBe(200);
    expect(res.body.role).toBe("member");
    expect(res.body.scopes).toContain("billing:read");
    expect(res.body.scopes).not.toContain("billing:write");
  });

  it("returns 401 TOKEN_EXPIRED for an expired token", async () => {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: `org_${uniqueSuffix()}`,
      issuedAt: new Date(Date.now() - 10 * 60_000),
      expiresInSeconds: 60,
    });
    const res = await me(token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("TOKEN_EXPIRED");
  });

  it("returns 401 INVALID_TOKEN for a token signed with another key", async () => {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: `org_${uniqueSuffix()}`,
      privateKey: generateTestKeyPair().privateKey,
    });
    const res = await me(token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("INVALID_TOKEN");
  });

  it("returns 401 INVALID_AUTHORIZED_PARTY for a token issued to another application", async () => {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: `org_${uniqueSuffix()}`,
      azp: "https://evil.example",
    });
    const res = await me(token);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("INVALID_AUTHORIZED_PARTY");
  });

  it("returns 401 SESSION_PENDING for a v2 session with tasks left (sts: pending), writing nothing", async () => {
    const userId = `user_${uniqueSuffix()}`;
    const orgId = `org_${uniqueSuffix()}`;
    // A user made to reset a compromised password (Clerk's reset-password task): the session
    // exists, but Clerk's SDKs treat it as signed out until the task is done.
    const res = await me(signClerkToken({ userId, orgId, claims: { sts: "pending" } }));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("SESSION_PENDING");
    expect(await testApp.ctx.db.user.count({ where: { clerkId: userId } })).toBe(0);
    expect(await testApp.ctx.db.organization.count({ where: { clerkId: orgId } })).toBe(0);
    // The same session once active, and a v1 token (no sts), are accepted.
    expect((await me(signClerkToken({ userId, orgId, claims: { sts: "active" } }))).status).toBe(
      200,
    );
    expect((await me(signClerkToken({ userId, orgId, version: 1 }))).status).toBe(200);
  });

  it("returns 403 NO_ACTIVE_ORGANIZATION for a session without an organization", async () => {
    const userId = `user_${uniqueSuffix()}`;
    for (const version of [1, 2] as const) {
      const res = await me(signClerkToken({ userId, orgId: null, version }));
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("NO_ACTIVE_ORGANIZATION");
    }
    expect(await testApp.ctx.db.user.count({ where: { clerkId: userId } })).toBe(0);
  });

  it("returns 401 MISSING_CREDENTIALS / INVALID_AUTHORIZATION_HEADER / INVALID_TOKEN", async () => {
    const missing = await request(testApp.app).get("/api/v1/me");
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe("MISSING_CREDENTIALS");
    const basic = await request(testApp.app).get("/api/v1/me").set("Authorization", "Basic eDp5");
    expect(basic.body.error.code).toBe("INVALID_AUTHORIZATION_HEADER");
    const garbage = await me("not-a-jwt");
    expect(garbage.status).toBe(401);
    expect(garbage.body.error.code).toBe("INVALID_TOKEN");
  });

  it("refuses session tokens with 401 SESSION_AUTH_NOT_CONFIGURED when Clerk is not configured", async () => {
    const bare = createTestApp({ env: { CLERK_JWT_KEY: "", CLERK_AUTHORIZED_PARTIES: "" } });
    try {
      const res = await request(bare.app)
        .get("/api/v1/me")
        .set("Authorization", `Bearer ${signClerkToken({ userId: "user_x", orgId: "org_x" })}`);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("SESSION_AUTH_NOT_CONFIGURED");
    } finally {
      await bare.close();
    }
  });

  it("converges 20 concurrent first requests of a new user on one user and one organization", async () => {
    const userId = `user_${uniqueSuffix()}`;
    const orgId = `org_${uniqueSuffix()}`;
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => me(signClerkToken({ userId, orgId }))),
    );
    expect(responses.map((res) => res.status)).toEqual(Array(20).fill(200));
    const db = testApp.ctx.db;
    expect(await db.user.count({ where: { clerkId: userId } })).toBe(1);
    expect(await db.organization.count({ where: { clerkId: orgId } })).toBe(1);
    expect(await db.membership.count({ where: { organization: { clerkId: orgId } } })).toBe(1);
    expect(new Set(responses.map((res) => String(res.body.organization.id))).size).toBe(1);
  });

  it("does not overwrite webhook data with token data for a known organization", async () => {
    const caller = await authHeaderFor(testApp, { role: "member" });
    const res = await request(testApp.app).get("/api/v1/me").set(caller.headers);
    expect(res.status).toBe(200);
    expect(res.body.organization.id).toBe(caller.organizationId);
    expect(res.body.organization.name).toMatch(/^Org /);
    expect(res.body.role).toBe("member");
  });

  it("returns 401 USER_DELETED for a user deleted by a Clerk webhook", async () => {
    const caller = await authHeaderFor(testApp);
    await testApp.ctx.db.user.update({
      where: { id: caller.userId },
      data: { deletedAt: new Date() },
    });
    const res = await request(testApp.app).get("/api/v1/me").set(caller.headers);
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("USER_DELETED");
  });
});
