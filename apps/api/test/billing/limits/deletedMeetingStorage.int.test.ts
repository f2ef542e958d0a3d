import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import request from "supertest";
import type { PrismaClient } from "@zigznote/database";
import { createMeeting, createStorageObject } from "@zigznote/database/testing";
import { checkPlanViolations, escalateExpiredStorageGrace } from "../../../src/billing";
import { transaction } from "../../../src/lib/afterCommit";
import { DAY_MS } from "../../../src/lib/time";
import { authHeaderFor, type AuthenticatedCaller } from "../../support/auth";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";

/**
 * A downgrade leaves an organization over its new plan's storage: a violation with a 7-day grace.
 * Deleting meetings is how the customer comes back under the limit, so a deleted meeting's
 * recordings stop counting when it is deleted, not when the purge deletes their bytes 30 days
 * later: the violation resolves at once, within the grace, and the limit is never enforced
 * against data the customer already deleted. (Before, the deleted recordings counted until the
 * purge: the violation outlived its grace and the organization turned read-only.)
 */

const GIB = 1024n ** 3n;

describe("DELETE /api/v1/meetings/:id and storage over the plan after a downgrade", () => {
  let clock: ManualClock;
  let testApp: TestApp;
  let db: PrismaClient;
  let storageDir: string;

  beforeAll(() => {
    clock = new ManualClock(new Date("2026-11-10T12:00:00.000Z"));
    storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-deleted-storage-"));
    testApp = createTestApp({ clock, env: { STORAGE_DIR: storageDir } });
    db = testApp.ctx.db;
  });
  afterAll(async () => {
    await testApp.close();
    rmSync(storageDir, { recursive: true, force: true });
  });

  /** Pro with 1.5 GiB and 0.25 GiB recorded, then downgraded to free (1 GiB), as a plan change records it. */
  async function downgradedOverStorage(): Promise<{
    caller: AuthenticatedCaller;
    big: string;
    small: string;
  }> {
    const caller = await authHeaderFor(testApp);
    const { organizationId } = caller;
    await db.organization.update({ where: { id: organizationId }, data: { planSlug: "pro" } });
    const big = await createMeeting(db, { organizationId });
    await createStorageObject(db, big, { sizeBytes: (3n * GIB) / 2n });
    const small = await createMeeting(db, { organizationId });
    await createStorageObject(db, small, { sizeBytes: GIB / 4n });
    await transaction(db, async (tx) => {
      await tx.organization.update({ where: { id: organizationId }, data: { planSlug: "free" } });
      await checkPlanViolations(
        { db: tx, settings: testApp.ctx.modules.billing.deps.settings },
        { organizationId, now: clock.now() },
      );
    });
    return { caller, big: big.id, small: small.id };
  }

  async function overview(headers: Record<string, string>) {
    const res = await request(testApp.app).get("/api/v1/organization").set(headers);
    expect(res.status).toBe(200);
    return res.body as {
      usage: { storageBytes: number };
      violations: { type: string; action: string }[];
    };
  }

  function upload(headers: Record<string, string>, meetingId: string, bytes: number) {
    return request(testApp.app)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(headers)
      .set("Content-Type", "video/mp4")
      .send(Buffer.alloc(bytes, 5));
  }

  it("resolves the storage violation within the grace, before the purge, and the grace's end enforces nothing", async () => {
    const { caller, big, small } = await downgradedOverStorage();
    expect((await overview(caller.headers)).violations).toEqual([
      expect.objectContaining({ type: "storage", action: "grace_period" }),
    ]);

    clock.advance(2 * DAY_MS);
    const deleted = await request(testApp.app)
      .delete(`/api/v1/meetings/${big}`)
      .set(caller.headers);
    expect(deleted.status).toBe(204);

    // The purge has not run: the deleted recording's row and bytes are still stored ...
    expect(await db.storageObject.count({ where: { meetingId: big } })).toBe(1);
    // ... but they are no longer the customer's: usage is the live meeting's, nothing violated.
    const after = await overview(caller.headers);
    expect(after.usage.storageBytes).toBe(Number(GIB / 4n));
    expect(after.violations).toEqual([]);
    const resolved = await db.planViolation.findFirstOrThrow({
      where: { organizationId: caller.organizationId, type: "storage" },
    });
    expect(resolved.resolvedAt).toEqual(clock.now());
    expect(
      await db.notification.count({
        where: { organizationId: caller.organizationId, type: "plan.violation_resolved" },
      }),
    ).toBeGreaterThan(0);

    // Past the grace's end: the hourly job finds nothing to enforce, and recordings are stored.
    clock.advance(6 * DAY_MS);
    const settings = testApp.ctx.modules.billing.deps.settings;
    expect(await escalateExpiredStorageGrace({ db, settings }, { now: clock.now() })).not.toContain(
      caller.organizationId,
    );
    expect((await overview(caller.headers)).violations).toEqual([]);
    expect((await upload(caller.headers, small, 1024)).status).toBe(200);
  });

  it("an organization read-only for storage (grace over) may record again once it deleted enough", async () => {
    const { caller, big, small } = await downgradedOverStorage();
    clock.advance(8 * DAY_MS);
    await checkPlanViolations(
      { db, settings: testApp.ctx.modules.billing.deps.settings },
      { organizationId: caller.organizationId, now: clock.now() },
    );
    expect((await overview(caller.headers)).violations).toEqual([
      expect.objectContaining({ type: "storage", action: "read_only" }),
    ]);
    const refused = await upload(caller.headers, small, 1024);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("PLAN_LIMIT_STORAGE");

    expect(
      (await request(testApp.app).delete(`/api/v1/meetings/${big}`).set(caller.headers)).status,
    ).toBe(204);
    expect((await overview(caller.headers)).violations).toEqual([]);
    expect((await upload(caller.headers, small, 1024)).status).toBe(200);
    const meeting = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "After the clean-up", meetingUrl: "https://zoom.us/j/81234500001" });
    expect(meeting.status).toBe(201);
  });

  it("a deletion that leaves the organization over the limit keeps the violation and its grace", async () => {
    const { caller, small } = await downgradedOverStorage();
    const before = await overview(caller.headers);
    clock.advance(DAY_MS);
    expect(
      (await request(testApp.app).delete(`/api/v1/meetings/${small}`).set(caller.headers)).status,
    ).toBe(204);
    const after = await overview(caller.headers);
    expect(after.usage.storageBytes).toBe(Number((3n * GIB) / 2n));
    expect(after.violations).toEqual(
      before.violations.map((v) => ({ ...v, current: Number((3n * GIB) / 2n) })),
    );
  });
});
