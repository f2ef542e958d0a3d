import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  createMeeting,
  createMembership,
  createOrganization,
  createStorageObject,
  createUser,
} from "@zigznote/database/testing";
import { NotFoundError, PayloadTooLargeError } from "@zigznote/shared";
import {
  deleteRecording,
  openRecording,
  parseRecordingContentType,
  storeRecording,
  type RecordingDeps,
} from "../../src/recordings/recordingService";
import { type LocalDiskStorage, newStorageKey } from "../../src/recordings";
import { getUsage, startOfUtcMonth } from "../../src/recordings";
import { createTestApp, type TestApp } from "../support/helpers";

function filesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe("LocalDiskStorage", () => {
  let testApp: TestApp;
  let storage: LocalDiskStorage;
  beforeAll(() => {
    testApp = createTestApp();
    storage = testApp.ctx.storage as LocalDiskStorage;
  });
  afterAll(() => testApp.close());

  it("streams an object in and out, with its size and hash", async () => {
    const key = newStorageKey("org");
    const result = await storage.put(
      key,
      Readable.from([Buffer.from("hello "), Buffer.from("world")]),
      {
        maxBytes: 100,
      },
    );
    expect(result.sizeBytes).toBe(11);
    expect(result.sha256).toBe("b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
    const { body, sizeBytes } = await storage.get(key);
    expect(sizeBytes).toBe(11);
    expect((await buffer(body)).toString()).toBe("hello world");
  });

  it("refuses an object over the limit and leaves no file behind", async () => {
    const key = newStorageKey("org");
    await expect(
      storage.put(key, Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), { maxBytes: 100 }),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await storage.exists(key)).toBe(false);
    expect(filesUnder(testApp.ctx.config.STORAGE_DIR).filter((f) => f.endsWith(".part"))).toEqual(
      [],
    );
  });

  it("treats deleting a missing object as done", async () => {
    await expect(storage.delete(newStorageKey("org"))).resolves.toBeUndefined();
    await expect(storage.get(newStorageKey("org"))).rejects.toBeInstanceOf(NotFoundError);
  });

  it("makes keys that cannot be guessed and refuses path tricks", async () => {
    const keys = new Set(Array.from({ length: 1000 }, () => newStorageKey("org")));
    expect(keys.size).toBe(1000);
    expect([...keys][0]).toMatch(/^org\/recordings\/[A-Za-z0-9_-]{32}$/);
    await expect(storage.exists("../../etc/passwd")).rejects.toThrow(/invalid storage key/);
  });
});

describe("recordings and usage", () => {
  let testApp: TestApp;
  let deps: RecordingDeps;
  beforeAll(() => {
    testApp = createTestApp();
    // The app context has everything the recording functions need.
    deps = testApp.ctx.modules.recordings.deps.recordings;
  });
  afterAll(() => testApp.close());

  const body = (bytes: number, fill = 1) => Readable.from([Buffer.alloc(bytes, fill)]);
  const usageOf = (organizationId: string) => getUsage(testApp.ctx.db, organizationId, new Date());

  it("keeps usage equal to the stored objects through upload, replace and delete", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    const other = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    expect((await usageOf(org.id)).storageBytes).toBe(0n);

    const first = await storeRecording(deps, {
      organizationId: org.id,
      meetingId: meeting.id,
      body: body(1000),
      contentType: "video/mp4",
      maxBytes: 10_000,
    });
    await storeRecording(deps, {
      organizationId: org.id,
      meetingId: other.id,
      body: body(300),
      contentType: "audio/mpeg",
      maxBytes: 10_000,
    });
    expect((await usageOf(org.id)).storageBytes).toBe(1300n);

    const second = await storeRecording(deps, {
      organizationId: org.id,
      meetingId: meeting.id,
      body: body(2500, 2),
      contentType: "video/mp4",
      maxBytes: 10_000,
    });
    expect((await usageOf(org.id)).storageBytes).toBe(2800n);
    expect(await testApp.ctx.storage.exists(first.key)).toBe(false);
    const opened = await openRecording(deps, { organizationId: org.id, meetingId: meeting.id });
    expect(opened.object.id).toBe(second.id);
    expect((await buffer(opened.body)).equals(Buffer.alloc(2500, 2))).toBe(true);

    expect(await deleteRecording(deps, { organizationId: org.id, meetingId: meeting.id })).toBe(1);
    expect(await testApp.ctx.storage.exists(second.key)).toBe(false);
    expect((await usageOf(org.id)).storageBytes).toBe(300n);
    await expect(
      openRecording(deps, { organizationId: org.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  it("hides a meeting's recording from another organization", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const intruder = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    await storeRecording(deps, {
      organizationId: org.id,
      meetingId: meeting.id,
      body: body(10),
      contentType: "video/mp4",
      maxBytes: 100,
    });
    await expect(
      openRecording(deps, { organizationId: intruder.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      deleteRecording(deps, { organizationId: intruder.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      storeRecording(deps, {
        organizationId: intruder.id,
        meetingId: meeting.id,
        body: body(10),
        contentType: "video/mp4",
        maxBytes: 100,
      }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect((await usageOf(org.id)).storageBytes).toBe(10n);
  });

  it("refuses an upload over the limit, leaving no row and no file", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    const before = filesUnder(testApp.ctx.config.STORAGE_DIR).length;
    await expect(
      storeRecording(deps, {
        organizationId: org.id,
        meetingId: meeting.id,
        body: body(5000),
        contentType: "video/mp4",
        maxBytes: 4096,
      }),
    ).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(0);
    expect(filesUnder(testApp.ctx.config.STORAGE_DIR).length).toBe(before);
  });

  it("serializes concurrent replacements: one recording remains and no file is orphaned", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        storeRecording(deps, {
          organizationId: org.id,
          meetingId: meeting.id,
          body: body(100 + i),
          contentType: "video/mp4",
          maxBytes: 1000,
        }),
      ),
    );
    const rows = await testApp.ctx.db.storageObject.findMany({ where: { meetingId: meeting.id } });
    expect(rows).toHaveLength(1);
    for (const result of results) {
      expect(await testApp.ctx.storage.exists(result.key)).toBe(result.id === rows[0]!.id);
    }
    expect((await usageOf(org.id)).storageBytes).toBe(rows[0]!.sizeBytes);
  });

  it("sums the live meetings' stored objects (a deleted meeting's stop counting before the purge), this UTC month's meetings and active members", async () => {
    const db = testApp.ctx.db;
    const org = await createOrganization(db);
    const now = new Date(Date.UTC(2026, 10, 15, 12));
    const kept = await createMeeting(db, {
      organizationId: org.id,
      createdAt: new Date(Date.UTC(2026, 10, 1, 0, 0, 1)),
    });
    await createMeeting(db, {
      organizationId: org.id,
      deletedAt: now,
      purgedAt: now,
      createdAt: new Date(Date.UTC(2026, 10, 2)),
    });
    await createMeeting(db, {
      organizationId: org.id,
      createdAt: new Date(Date.UTC(2026, 9, 31, 23, 59, 59)),
    });
    const deletedNotPurged = await createMeeting(db, {
      organizationId: org.id,
      deletedAt: now,
      createdAt: new Date(Date.UTC(2026, 10, 3)),
    });
    await createStorageObject(db, kept, { sizeBytes: 5000n });
    await createStorageObject(db, deletedNotPurged, { sizeBytes: 7000n });
    const [alice, bob, gone] = await Promise.all([
      createUser(db),
      createUser(db),
      createUser(db, { deletedAt: now }),
    ]);
    for (const user of [alice, bob, gone])
      await createMembership(db, { organizationId: org.id, userId: user.id });

    const usage = await getUsage(db, org.id, now);
    // The deleted meeting's 7000 bytes are still stored (not purged), but no longer counted.
    expect(await db.storageObject.count({ where: { meetingId: deletedNotPurged.id } })).toBe(1);
    expect(usage).toEqual({ storageBytes: 5000n, meetingsThisMonth: 3, activeMembers: 2 });
    expect(startOfUtcMonth(now).toISOString()).toBe("2026-11-01T00:00:00.000Z");
  });

  it("accepts only recording media types", () => {
    expect(parseRecordingContentType("video/MP4; codecs=avc1")).toBe("video/mp4");
    expect(() => parseRecordingContentType("text/html")).toThrow(
      /Unsupported recording content type/,
    );
    expect(() => parseRecordingContentType(undefined)).toThrow(/no Content-Type/);
  });
});
