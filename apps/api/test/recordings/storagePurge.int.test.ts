import { Readable } from "node:stream";
import { createMeeting, createOrganization } from "@zigznote/database/testing";
import {
  cleanupOrphanedStorage,
  enqueueRecordingImport,
  processRecordingImport,
} from "../../src/recordings";
import { storeRecording } from "../../src/recordings";
import type { StorageProvider } from "../../src/recordings";
import { getUsage } from "../../src/recordings";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";

const DAY = 24 * 60 * 60 * 1000;

describe("cleanupOrphanedStorage", () => {
  let testApp: TestApp;
  const clock = new ManualClock();
  beforeAll(() => {
    testApp = createTestApp({
      clock,
      env: { JOB_BATCH_SIZE: "2", STORAGE_PURGE_AFTER_DAYS: "30" },
    });
  });
  afterAll(() => testApp.close());

  async function meetingWithRecording(
    organizationId: string,
    deletedDaysAgo: number | null,
    bytes: number,
  ) {
    const now = clock.now().getTime();
    const meeting = await createMeeting(testApp.ctx.db, { organizationId });
    const object = await storeRecording(
      { db: testApp.ctx.db, storage: testApp.ctx.storage, logger: testApp.ctx.logger },
      {
        organizationId,
        meetingId: meeting.id,
        body: Readable.from([Buffer.alloc(bytes, 7)]),
        contentType: "video/mp4",
        maxBytes: 1_000_000,
      },
    );
    if (deletedDaysAgo !== null) {
      await testApp.ctx.db.meeting.update({
        where: { id: meeting.id },
        data: { deletedAt: new Date(now - deletedDaysAgo * DAY) },
      });
    }
    return { meeting, object };
  }

  it("deletes the files, then the rows, of meetings deleted more than 30 days ago, in batches", async () => {
    clock.set(Date.now());
    const org = await createOrganization(testApp.ctx.db);
    const expired = await Promise.all(
      [31, 45, 60, 90, 31].map((days) => meetingWithRecording(org.id, days, 1000)),
    );
    const recent = await meetingWithRecording(org.id, 29, 200);
    const live = await meetingWithRecording(org.id, null, 30);
    // Deleted meetings' recordings count no more, purged or not: only the live one's 30 bytes.
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(30n);

    const result = await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, {
      now: clock.now(),
    });
    expect(result.rowsAffected).toBeGreaterThanOrEqual(5);

    for (const { meeting, object } of expired) {
      expect(await testApp.ctx.storage.exists(object.key)).toBe(false);
      expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(
        0,
      );
      expect(
        (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).purgedAt,
      ).toEqual(clock.now());
    }
    for (const { meeting, object } of [recent, live]) {
      expect(await testApp.ctx.storage.exists(object.key)).toBe(true);
      expect(
        (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).purgedAt,
      ).toBeNull();
    }
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(30n);

    // A second run finds nothing of this organization left to do.
    await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, { now: clock.now() });
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(30n);
  });

  it("keeps the rows of a meeting whose file could not be deleted, and finishes on the next run", async () => {
    clock.set(Date.now());
    const org = await createOrganization(testApp.ctx.db);
    const stuck = await meetingWithRecording(org.id, 40, 500);
    const fine = await meetingWithRecording(org.id, 40, 600);

    const real = testApp.ctx.storage;
    const failing: StorageProvider = {
      driver: real.driver,
      put: (key, body, options) => real.put(key, body, options),
      get: (key) => real.get(key),
      exists: (key) => real.exists(key),
      delete: (key) =>
        key === stuck.object.key ? Promise.reject(new Error("disk busy")) : real.delete(key),
      async deleteMany(keys) {
        const { failed } = await real.deleteMany(keys.filter((key) => key !== stuck.object.key));
        if (!keys.includes(stuck.object.key)) return { failed };
        return { failed: [...failed, { key: stuck.object.key, error: new Error("disk busy") }] };
      },
      abortIncompleteUploads: (startedBefore) => real.abortIncompleteUploads(startedBefore),
    };
    const result = await cleanupOrphanedStorage(
      { ...testApp.ctx.modules.recordings.deps.purge, storage: failing },
      { now: clock.now() },
    );
    expect(result.summary).toMatchObject({ failedMeetings: 1 });
    expect(
      await testApp.ctx.db.storageObject.count({ where: { meetingId: stuck.meeting.id } }),
    ).toBe(1);
    expect(await testApp.ctx.storage.exists(stuck.object.key)).toBe(true);
    expect(await testApp.ctx.storage.exists(fine.object.key)).toBe(false);
    expect(
      (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: stuck.meeting.id } }))
        .purgedAt,
    ).toBeNull();

    await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, { now: clock.now() });
    expect(await testApp.ctx.storage.exists(stuck.object.key)).toBe(false);
    expect(
      await testApp.ctx.db.storageObject.count({ where: { meetingId: stuck.meeting.id } }),
    ).toBe(0);
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(0n);
  });

  it("purges the recordings of an organization deleted more than 30 days ago, live meetings too", async () => {
    clock.set(Date.now());
    const org = await createOrganization(testApp.ctx.db);
    const live = await meetingWithRecording(org.id, null, 300);
    const deleted = await meetingWithRecording(org.id, 2, 40);
    const recentlyGone = await createOrganization(testApp.ctx.db);
    const kept = await meetingWithRecording(recentlyGone.id, null, 50);
    await testApp.ctx.db.organization.update({
      where: { id: org.id },
      data: { deletedAt: new Date(clock.now().getTime() - 31 * DAY) },
    });
    await testApp.ctx.db.organization.update({
      where: { id: recentlyGone.id },
      data: { deletedAt: new Date(clock.now().getTime() - 29 * DAY) },
    });

    await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, { now: clock.now() });

    // Nobody can reach them any more: their files go, as a deleted meeting's do.
    for (const { meeting, object } of [live, deleted]) {
      expect(await testApp.ctx.storage.exists(object.key)).toBe(false);
      expect(
        (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).purgedAt,
      ).toEqual(clock.now());
    }
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(0n);
    // Deleted less than STORAGE_PURGE_AFTER_DAYS ago: kept, like a meeting deleted as recently.
    expect(await testApp.ctx.storage.exists(kept.object.key)).toBe(true);
  });

  it("does not copy a Recall recording into a deleted organization's meeting", async () => {
    clock.set(Date.now());
    const org = await createOrganization(testApp.ctx.db, { deletedAt: clock.now() });
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    let downloads = 0;
    const importId = await enqueueRecordingImport(
      { db: testApp.ctx.db },
      {
        organizationId: org.id,
        meetingId: meeting.id,
        externalId: `rec_${meeting.id}`,
        now: clock.now(),
      },
    );
    const outcome = await processRecordingImport(
      {
        ...testApp.ctx.modules.recordings.deps.imports,
        resolveMedia: () => {
          downloads += 1;
          return Promise.reject(new Error("not expected"));
        },
      },
      { importId: importId! },
    );
    expect(outcome).toBe("failed");
    expect(downloads).toBe(0);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(0);
  });
});
