import { sqlTransaction } from "@zigznote/database";
import { createMeeting as createMeetingRow, createOrganization } from "@zigznote/database/testing";
import { isAppError } from "@zigznote/shared";
import { createMeeting } from "../../../src/meetings";
import { createTestApp, type TestApp } from "../../support/helpers";

/**
 * `createMeeting` is one unit of work that a caller can make part of its own transaction (an
 * idempotent request storing its answer, say): given a transaction it joins it, and billing's
 * lock is then held until the caller's commit, so the limit stays exact for the caller's whole
 * transaction.
 */
describe("createMeeting in a caller's transaction", () => {
  let testApp: TestApp;
  beforeAll(() => {
    testApp = createTestApp();
  });
  afterAll(() => testApp.close());

  const input = (organizationId: string) => ({
    organizationId,
    title: "Joined",
    meetingUrl: `https://zoom.us/j/${Math.floor(1e10 + Math.random() * 8e10)}`,
  });
  const count = (organizationId: string) =>
    testApp.ctx.db.meeting.count({ where: { organizationId } });

  it("rolls back with the caller's Prisma transaction, and creates nothing of its own", async () => {
    const { id } = await createOrganization(testApp.ctx.db);
    await expect(
      testApp.ctx.db.$transaction(async (tx) => {
        await createMeeting({ ...testApp.ctx.modules.meetings.deps, db: tx }, input(id));
        expect(await tx.meeting.count({ where: { organizationId: id } })).toBe(1);
        throw new Error("the caller rolls back");
      }),
    ).rejects.toThrow("the caller rolls back");
    expect(await count(id)).toBe(0);
  });

  it("holds the organization's lock until the caller commits: a concurrent create at the limit waits, then is refused", async () => {
    const { id } = await createOrganization(testApp.ctx.db); // free: 10 a month
    for (let i = 0; i < 9; i += 1) await createMeetingRow(testApp.ctx.db, { organizationId: id });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let created!: () => void;
    const isCreated = new Promise<void>((resolve) => (created = resolve));
    const caller = sqlTransaction(testApp.ctx.db, async (tx) => {
      await createMeeting({ ...testApp.ctx.modules.meetings.deps, db: tx }, input(id));
      created();
      await gate; // the caller's own work, still in its transaction
    });
    await isCreated;
    let isSettled = false;
    const other = createMeeting(testApp.ctx.modules.meetings.deps, input(id)).then(
      () => "created",
      (error: unknown) => (isAppError(error) ? error.code : String(error)),
    );
    void other.finally(() => (isSettled = true));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(isSettled).toBe(false);
    release();
    await caller;
    expect(await other).toBe("PLAN_LIMIT_MEETINGS");
    expect(await count(id)).toBe(10);
  });
});
