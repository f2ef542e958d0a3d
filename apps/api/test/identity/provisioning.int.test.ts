import { createPrismaClient } from "@zigznote/database";
import { uniqueSuffix } from "@zigznote/database/testing";
import {
  deleteMembership,
  deleteUser,
  mapClerkRole,
  upsertMembership,
  upsertOrganization,
  upsertUser,
} from "../../src/identity/identityService";
import { testDatabaseUrl } from "../support/env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 20 });
afterAll(() => db.$disconnect());

const t = (seconds: number) => new Date(Date.UTC(2026, 10, 1, 0, 0, seconds));

describe("identityService", () => {
  it("maps Clerk roles", () => {
    expect(mapClerkRole("org:admin")).toBe("admin");
    expect(mapClerkRole("org:member")).toBe("member");
    expect(mapClerkRole(undefined)).toBe("member");
  });

  it("converges 20 concurrent first requests on one user and one organization", async () => {
    const userClerkId = `user_${uniqueSuffix()}`;
    const orgClerkId = `org_${uniqueSuffix()}`;
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const user = await upsertUser(
          { db },
          { clerkId: userClerkId, updatedAt: t(i), onlyIfMissing: true },
        );
        const org = await upsertOrganization(
          { db },
          { clerkId: orgClerkId, name: "Acme", updatedAt: t(i), onlyIfMissing: true },
        );
        await upsertMembership(
          { db },
          {
            organizationId: org.id,
            userId: user.id,
            role: "admin",
            updatedAt: t(i),
            onlyIfMissing: true,
          },
        );
      }),
    );
    expect(await db.user.count({ where: { clerkId: userClerkId } })).toBe(1);
    expect(await db.organization.count({ where: { clerkId: orgClerkId } })).toBe(1);
    const org = await db.organization.findUniqueOrThrow({ where: { clerkId: orgClerkId } });
    expect(await db.membership.count({ where: { organizationId: org.id } })).toBe(1);
  });

  it("applies a newer update and ignores an older one arriving later", async () => {
    const clerkId = `user_${uniqueSuffix()}`;
    await upsertUser({ db }, { clerkId, email: "new@example.test", updatedAt: t(20) });
    const ref = await upsertUser({ db }, { clerkId, email: "old@example.test", updatedAt: t(10) });
    const after = await db.user.findUniqueOrThrow({ where: { id: ref.id } });
    expect(after.email).toBe("new@example.test");
  });

  it("does not let first-request provisioning overwrite webhook data", async () => {
    const clerkId = `org_${uniqueSuffix()}`;
    await upsertOrganization({ db }, { clerkId, name: "Real Name", updatedAt: t(5) });
    const ref = await upsertOrganization(
      { db },
      { clerkId, name: "placeholder", updatedAt: t(50), onlyIfMissing: true },
    );
    const org = await db.organization.findUniqueOrThrow({ where: { id: ref.id } });
    expect(org.name).toBe("Real Name");
  });

  it("keeps a deleted user deleted when a late update arrives", async () => {
    const clerkId = `user_${uniqueSuffix()}`;
    await deleteUser({ db }, { clerkId, at: t(30) });
    const ref = await upsertUser({ db }, { clerkId, email: "late@example.test", updatedAt: t(10) });
    expect(ref.deletedAt).not.toBeNull();
    const user = await db.user.findUniqueOrThrow({ where: { id: ref.id } });
    expect(user.email).toBeNull();
  });

  it("does not remove a membership re-created after the deletion event", async () => {
    const user = await upsertUser({ db }, { clerkId: `user_${uniqueSuffix()}`, updatedAt: t(0) });
    const org = await upsertOrganization(
      { db },
      { clerkId: `org_${uniqueSuffix()}`, name: "X", updatedAt: t(0) },
    );
    await upsertMembership(
      { db },
      { organizationId: org.id, userId: user.id, role: "member", updatedAt: t(40) },
    );
    const pair = { organizationId: org.id, userId: user.id };
    expect(await deleteMembership({ db }, { ...pair, at: t(30) })).toBe(0);
    expect(await deleteMembership({ db }, { ...pair, at: t(45) })).toBe(1);
  });
});
