import {
  createMeeting,
  createOrganizationWithAdmin,
  createStorageObject,
} from "@zigznote/database/testing";
import {
  changePlan,
  checkPlanViolations,
  escalateExpiredStorageGrace,
  extendViolationGrace,
  subscribe,
} from "../../../src/billing";
import { createBillingHarness, type BillingHarness } from "../../support/billingHarness";

/**
 * The admins are told of every change of a violation's enforcement, once each: detected, read-only
 * at the end of a grace, a platform admin's grace, read-only again when that grace ends.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
const GIB = 1024n * 1024n * 1024n;

let h: BillingHarness;
beforeAll(async () => {
  h = await createBillingHarness();
});
afterAll(() => h.close());

/** The `plan.violation` notices queued for the organization's admin, oldest first. */
async function violationNotices(organizationId: string) {
  const rows = await h.db.notification.findMany({
    where: { organizationId, type: "plan.violation", recipientUserId: { not: null } },
    orderBy: { createdAt: "asc" },
  });
  return rows.map((row) => {
    const payload = row.payload as { type: string; action: string; graceEndsAt?: string };
    return { type: payload.type, action: payload.action, graceEndsAt: payload.graceEndsAt };
  });
}

describe("violation notices across a platform admin's extended grace", () => {
  it("tells the admins of the extension and again when the extended grace ends (storage)", async () => {
    const { organization, user } = await createOrganizationWithAdmin(h.db);
    const organizationId = organization.id;
    await subscribe(h.deps, { organizationId, planSlug: "business" });
    const meeting = await createMeeting(h.db, { organizationId });
    await createStorageObject(h.db, meeting, { sizeBytes: 110n * GIB });

    const downgradedAt = h.clock.now();
    await changePlan(h.deps, { organizationId, planSlug: "pro" });
    const firstGraceEnd = new Date(downgradedAt.getTime() + 7 * DAY_MS).toISOString();
    h.clock.set(new Date(firstGraceEnd));
    await escalateExpiredStorageGrace({ db: h.db, settings: h.settings }, { now: h.clock.now() });
    expect(await violationNotices(organizationId)).toEqual([
      { type: "storage", action: "grace_period", graceEndsAt: firstGraceEnd },
      { type: "storage", action: "read_only", graceEndsAt: firstGraceEnd },
    ]);

    // Support gives three more days: the admins learn the new end...
    const row = await h.db.planViolation.findFirstOrThrow({
      where: { organizationId, resolvedAt: null },
    });
    const extendedEnd = new Date(h.clock.now().getTime() + 3 * DAY_MS);
    expect(
      await extendViolationGrace(
        { db: h.db, settings: h.settings },
        {
          violationId: row.id,
          organizationId,
          expectedVersion: row.version,
          now: h.clock.now(),
          actorUserId: user.id,
          reason: "Upgrading next week",
          graceEndsAt: extendedEnd,
        },
      ),
    ).toBe(true);
    // ...and, when it is over, that the organization is read-only again.
    h.clock.set(extendedEnd);
    await escalateExpiredStorageGrace({ db: h.db, settings: h.settings }, { now: h.clock.now() });
    const violation = await h.db.planViolation.findUniqueOrThrow({ where: { id: row.id } });
    expect(violation.action).toBe("read_only");

    expect(await violationNotices(organizationId)).toEqual([
      { type: "storage", action: "grace_period", graceEndsAt: firstGraceEnd },
      { type: "storage", action: "read_only", graceEndsAt: firstGraceEnd },
      { type: "storage", action: "grace_period", graceEndsAt: extendedEnd.toISOString() },
      { type: "storage", action: "read_only", graceEndsAt: extendedEnd.toISOString() },
    ]);

    // Checked again and again: nothing more is queued.
    h.clock.advance(DAY_MS);
    await checkPlanViolations(
      { db: h.db, settings: h.settings },
      { organizationId, now: h.clock.now() },
    );
    expect(await violationNotices(organizationId)).toHaveLength(4);
  });
});
