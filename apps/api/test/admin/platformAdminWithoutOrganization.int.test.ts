import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { signClerkToken } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp();
});
afterAll(() => testApp.close());

/** A Clerk session with no active organization, signed with the test's own key. */
function sessionWithoutOrganization(userId: string, claims: Record<string, unknown> = {}) {
  return { Authorization: `Bearer ${signClerkToken({ userId, orgId: null, claims })}` };
}

describe("a session without an active organization", () => {
  it("lets a platform admin (session claim) use the console's routes: GET /api/v1/admin/overview is 200", async () => {
    const userId = `user_${uniqueSuffix()}`;
    const headers = sessionWithoutOrganization(userId, { metadata: { platformAdmin: true } });
    const res = await request(testApp.app).get("/api/v1/admin/overview").set(headers);
    expect(res.status).toBe(200);
    // The operator is provisioned like any first caller, without a membership.
    const user = await testApp.ctx.db.user.findUniqueOrThrow({
      where: { clerkId: userId },
      include: { memberships: true },
    });
    expect(user.memberships).toEqual([]);
  });

  it("lets a platform admin listed in PLATFORM_ADMIN_USER_IDS in without an organization", async () => {
    const userId = `user_${uniqueSuffix()}`;
    const listed = createTestApp({ env: { PLATFORM_ADMIN_USER_IDS: userId } });
    try {
      const res = await request(listed.app)
        .get("/api/v1/admin/overview")
        .set(sessionWithoutOrganization(userId));
      expect(res.status).toBe(200);
    } finally {
      await listed.close();
    }
  });

  it("still answers 403 NO_ACTIVE_ORGANIZATION on routes that act within an organization, even for a platform admin", async () => {
    const headers = sessionWithoutOrganization(`user_${uniqueSuffix()}`, {
      metadata: { platformAdmin: true },
    });
    for (const path of ["/api/v1/me", "/api/v1/meetings"]) {
      const res = await request(testApp.app).get(path).set(headers);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("NO_ACTIVE_ORGANIZATION");
    }
    const create = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(headers)
      .send({ title: "Standup", meetingUrl: "https://zoom.us/j/123456789" });
    expect(create.status).toBe(403);
    expect(create.body.error.code).toBe("NO_ACTIVE_ORGANIZATION");
  });

  it("answers 403 NO_ACTIVE_ORGANIZATION to anyone else, on the console's routes too", async () => {
    const headers = sessionWithoutOrganization(`user_${uniqueSuffix()}`);
    for (const path of ["/api/v1/admin/overview", "/api/v1/meetings"]) {
      const res = await request(testApp.app).get(path).set(headers);
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("NO_ACTIVE_ORGANIZATION");
    }
  });
});
