import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { createMeeting, createOrganization } from "@zigznote/database/testing";
import {
  enqueueRecordingImport,
  processDueRecordingImports,
  processRecordingImport,
  type RecordingImportDeps,
} from "../../src/recordings";
import { cleanupOrphanedStorage } from "../../src/recordings";
import { storeRecording } from "../../src/recordings";
import { getUsage } from "../../src/recordings";
import { startS3Server, type S3TestServer } from "../support/fakes/s3Server";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { filesUnder } from "../support/storageFiles";
import { closeServer } from "../support/recallEvents";
import { generatedBody, generatedBytes, MIB, sha256Of } from "./transfers";

/** Recall media imports and the storage purge with STORAGE_DRIVER=s3 (s3rver on loopback). */

const DAY = 24 * 60 * 60 * 1000;
let s3: S3TestServer;
let testApp: TestApp;
const clock = new ManualClock();

beforeAll(async () => {
  s3 = await startS3Server();
  testApp = createTestApp({
    clock,
    storage: s3.storage(),
    env: { ...s3.env(), JOB_BATCH_SIZE: "3", STORAGE_PURGE_AFTER_DAYS: "30" },
  });
});
afterAll(async () => {
  await testApp.close();
  await s3.close();
});
beforeEach(() => clock.set(Date.now()));

/** Files under the app's STORAGE_DIR: with S3 there must be none. */
const localFiles = () => filesUnder(testApp.ctx.config.STORAGE_DIR);

/**
 * Recall's media host: streams `total` bytes made on the fly. `failures` lists what the next
 * requests meet: "503" (an error answer) or "cut" (the connection drops half-way through).
 */
async function startMediaHost(total: number) {
  const failures: ("503" | "cut")[] = [];
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests += 1;
    const failure = failures.shift();
    if (failure === "503") {
      res.writeHead(503).end("try later");
      return;
    }
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": total });
    const body = generatedBody(total, {
      onChunk: (sent) => {
        if (failure === "cut" && sent >= total / 2) res.destroy();
      },
    });
    body.pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/media/video_mixed.mp4?X-Amz-Signature=test`,
    failures,
    requests: () => requests,
    close: () => closeServer(server),
  };
}

describe("Recall media imports into the bucket", () => {
  it("streams the media straight into the bucket, retrying a failed or cut download", async () => {
    const total = 24 * MIB + 5;
    const media = await startMediaHost(total);
    // The periodic pass takes every due import of the database, and this test's media host
    // answers for any of them: imports an earlier suite of this Jest worker left would be counted.
    await testApp.ctx.db.recordingImport.deleteMany({});
    try {
      const deps: RecordingImportDeps = {
        ...testApp.ctx.modules.recordings.deps.imports,
        resolveMedia: () => Promise.resolve({ url: media.url, contentType: "video/mp4" }),
        maxBytes: 64 * MIB,
        maxAttempts: 4,
      };
      const org = await createOrganization(testApp.ctx.db);
      const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
      const importId = await enqueueRecordingImport(deps, {
        organizationId: org.id,
        meetingId: meeting.id,
        externalId: `rec_${meeting.id}`,
        now: clock.now(),
      });
      media.failures.push("503", "cut");

      expect(await processRecordingImport(deps, { importId: importId! })).toBe("retry_scheduled");
      clock.advance(31_000);
      // The download dies half-way: no object, but the multipart upload it fed stays open with
      // its complete part, recorded on the import for the next attempt to resume from (this
      // host ignores Range, so that attempt starts over and aborts it: resumableImports tests).
      expect(await processDueRecordingImports(deps, { batchSize: 10, concurrency: 2 })).toEqual({
        done: 0,
        attempted: 1,
      });
      expect(await s3.objectKeys()).toEqual([]);
      const cut = await testApp.ctx.db.recordingImport.findUniqueOrThrow({
        where: { id: importId! },
      });
      expect(cut.uploadedParts).toHaveLength(1);
      expect((await s3.openUploads()).map((upload) => upload.uploadId)).toEqual([
        cut.storageUploadId,
      ]);

      clock.advance(2 * 60_000 + 1000);
      expect(await processDueRecordingImports(deps, { batchSize: 10, concurrency: 2 })).toEqual({
        done: 1,
        attempted: 1,
      });
      expect(media.requests()).toBe(3);
      const row = await testApp.ctx.db.storageObject.findFirstOrThrow({
        where: { meetingId: meeting.id },
      });
      expect(row).toMatchObject({ source: "recall", sizeBytes: BigInt(total) });
      expect(row.sha256).toBe(sha256Of(await generatedBytes(total)));
      expect(await s3.objectKeys()).toEqual([row.key]);
      expect(await s3.openUploads()).toEqual([]);
      expect(s3.uploadFolders()).toEqual([]);
      // No temporary file, no local copy: the bytes went from Recall's URL to the bucket.
      expect(localFiles()).toEqual([]);
    } finally {
      await media.close();
    }
  });
});

describe("the storage purge with S3 (DeleteObjects)", () => {
  async function recordedMeeting(organizationId: string, deletedDaysAgo: number | null) {
    const meeting = await createMeeting(testApp.ctx.db, { organizationId });
    const object = await storeRecording(testApp.ctx.modules.recordings.deps.recordings, {
      organizationId,
      meetingId: meeting.id,
      body: Readable.from([Buffer.alloc(1000 + Math.floor(Math.random() * 1000), 3)]),
      contentType: "video/mp4",
      maxBytes: MIB,
    });
    if (deletedDaysAgo !== null) {
      await testApp.ctx.db.meeting.update({
        where: { id: meeting.id },
        data: { deletedAt: new Date(clock.now().getTime() - deletedDaysAgo * DAY) },
      });
    }
    return { meeting, object };
  }

  it("deletes in bulk, counts a missing object as deleted, and retries a failed batch next run", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const expired = [];
    for (const days of [31, 40, 45, 60, 90, 31, 35])
      expired.push(await recordedMeeting(org.id, days));
    const live = await recordedMeeting(org.id, null);
    // One object is already gone from the bucket (deleted by hand, a lifecycle rule...).
    await s3.client.send(
      new DeleteObjectCommand({ Bucket: s3.bucket, Key: expired[2]!.object.key }),
    );

    // First run: the store is unreachable. Nothing is marked purged, every row stays.
    const unreachable = s3.storage({ endpoint: "http://127.0.0.1:9" });
    const failedRun = await cleanupOrphanedStorage(
      { ...testApp.ctx.modules.recordings.deps.purge, storage: unreachable },
      { now: clock.now() },
    );
    unreachable.client.destroy();
    expect(failedRun.rowsAffected).toBe(0);
    expect(failedRun.summary).toMatchObject({ deletedObjects: 0 });
    // (The job sweeps the whole test database: other suites' leftovers may be among them.)
    expect(failedRun.summary.failedMeetings).toBeGreaterThanOrEqual(7);
    for (const { meeting } of expired) {
      expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(
        1,
      );
      expect(
        (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).purgedAt,
      ).toBeNull();
    }

    // Next run: batches of 3 meetings, one DeleteObjects call each.
    const calls: number[] = [];
    const storage = testApp.ctx.modules.recordings.deps.purge.storage as ReturnType<
      S3TestServer["storage"]
    >;
    storage.client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === "DeleteObjectsCommand") {
          calls.push((args.input as { Delete: { Objects: unknown[] } }).Delete.Objects.length);
        }
        return next(args);
      },
      { step: "initialize", name: "countPurgeBatches" },
    );
    const result = await cleanupOrphanedStorage(testApp.ctx.modules.recordings.deps.purge, {
      now: clock.now(),
    });
    storage.client.middlewareStack.remove("countPurgeBatches");
    expect(result.summary).toMatchObject({ failedMeetings: 0 });
    expect(result.summary.deletedObjects).toBeGreaterThanOrEqual(7);
    // Seven meetings in batches of three: at least three bulk calls, none per object.
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.reduce((sum, size) => sum + size, 0)).toBe(result.summary.deletedObjects);
    const keys = await s3.objectKeys();
    for (const { meeting, object } of expired) {
      expect(keys).not.toContain(object.key);
      expect(
        (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).purgedAt,
      ).toEqual(clock.now());
    }
    expect(keys).toContain(live.object.key);
    expect((await getUsage(testApp.ctx.db, org.id, clock.now())).storageBytes).toBe(
      live.object.sizeBytes,
    );
  });
});
