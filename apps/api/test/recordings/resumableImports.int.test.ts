import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Socket } from "node:net";
import { createMeeting, createOrganization } from "@zigznote/database/testing";
import { createMetrics, type Metrics } from "../../src/lib/metrics";
import {
  abortAbandonedUploads,
  enqueueRecordingImport,
  processRecordingImport,
  type RecordingImportDeps,
} from "../../src/recordings";
import { digestStoredObject } from "../../src/recordings/storage";
import { startS3Server, type S3TestServer } from "../support/fakes/s3Server";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { captureLogs, type CapturedLogs } from "../support/logCapture";
import { generatedBytes, MIB, sha256Of } from "./transfers";

/**
 * Resumable Recall media imports into the bucket (s3rver on loopback): the multipart upload an
 * import feeds survives a failed attempt, and the next one asks the source only for the rest.
 */

const PART = 512 * 1024;
const TOTAL = 5 * MIB + 123;
const MINUTE = 60_000;

/** One request the media source answered. */
interface Served {
  range: string | undefined;
  ifRange: string | undefined;
  status: number;
  /** Bytes of the body written to the connection. */
  bytes: number;
}

/**
 * A media host like S3 behind Recall's signed links: a strong ETag, Last-Modified, `Range:
 * bytes=N-` answered with 206 and Content-Range unless `If-Range` names another version (then
 * 200 and the whole object). It counts the bytes it serves per request, and can cut or stall
 * the next answer after a number of bytes, ignore Range or If-Range, and send slowly.
 */
async function startMediaSource(initial: Buffer) {
  const state = {
    body: initial,
    etag: '"v1"',
    honourRange: true,
    honourIfRange: true,
    /** The next answer's connection is destroyed once this many body bytes are written. */
    cutAfter: null as number | null,
    /** The next answer stops writing (and hangs) once this many body bytes are written. */
    stallAfter: null as number | null,
    /** Pause between 64 KiB chunks (a slow link). */
    gapMs: 0,
    served: [] as Served[],
  };
  const sockets = new Set<Socket>();
  const stalled = new Set<ServerResponse>();

  function answer(req: IncomingMessage, res: ServerResponse) {
    const body = state.body;
    const range = req.headers.range;
    const ifRange = req.headers["if-range"] as string | undefined;
    let start = 0;
    let status = 200;
    const match = /^bytes=(\d+)-$/.exec(range ?? "");
    if (
      match &&
      state.honourRange &&
      (!state.honourIfRange || !ifRange || ifRange === state.etag)
    ) {
      start = Number(match[1]);
      if (start >= body.length) {
        res.writeHead(416, { "Content-Range": `bytes */${body.length}` }).end();
        state.served.push({ range, ifRange, status: 416, bytes: 0 });
        return;
      }
      status = 206;
    }
    const served: Served = { range, ifRange, status, bytes: 0 };
    state.served.push(served);
    res.writeHead(status, {
      "Content-Type": "video/mp4",
      "Content-Length": body.length - start,
      ETag: state.etag,
      "Last-Modified": new Date(0).toUTCString(),
      "Accept-Ranges": "bytes",
      ...(status === 206
        ? { "Content-Range": `bytes ${start}-${body.length - 1}/${body.length}` }
        : {}),
    });
    const cutAfter = state.cutAfter;
    const stallAfter = state.stallAfter;
    state.cutAfter = null;
    state.stallAfter = null;
    const gapMs = state.gapMs;
    let position = start;
    const writeMore = () => {
      while (position < body.length) {
        if (res.destroyed) return; // the client went away: nothing more is served
        const limit = cutAfter ?? stallAfter;
        let end = Math.min(position + 64 * 1024, body.length);
        if (limit !== null) end = Math.min(end, start + limit);
        if (end <= position) {
          if (cutAfter !== null) res.destroy();
          else stalled.add(res);
          return;
        }
        const chunk = body.subarray(position, end);
        served.bytes += chunk.length;
        position = end;
        const canGoOn = res.write(chunk);
        if (gapMs > 0) {
          setTimeout(writeMore, gapMs);
          return;
        }
        if (!canGoOn) {
          res.once("drain", writeMore);
          return;
        }
      }
      res.end();
    };
    writeMore();
  }

  const server: Server = createServer(answer);
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/media/video_mixed.mp4?X-Amz-Signature=secret-signature`,
    state,
    /** Cuts every answer that hangs (a dead link finally reset). */
    resetStalled() {
      for (const res of stalled) res.destroy();
      stalled.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

type MediaSource = Awaited<ReturnType<typeof startMediaSource>>;

let s3: S3TestServer;
let testApp: TestApp;
const clock = new ManualClock();
let source: Buffer;

beforeAll(async () => {
  s3 = await startS3Server();
  testApp = createTestApp({ clock, storage: s3.storage({ partSizeBytes: PART }) });
  source = await generatedBytes(TOTAL);
});
afterAll(async () => {
  await testApp.close();
  await s3.close();
});
beforeEach(() => clock.set(Date.now()));

interface Harness {
  media: MediaSource;
  deps: RecordingImportDeps;
  logs: CapturedLogs;
  metrics: Metrics;
  meetingId: string;
  organizationId: string;
  importId: string;
}

/** A meeting with one import queued, copying from a fresh media source of `body`. */
async function harness(body: Buffer = source): Promise<Harness> {
  const media = await startMediaSource(body);
  const logs = captureLogs("info");
  const metrics = createMetrics();
  const deps: RecordingImportDeps = {
    ...testApp.ctx.modules.recordings.deps.imports,
    logger: logs.logger,
    metrics,
    resolveMedia: () => Promise.resolve({ url: media.url, contentType: "video/mp4" }),
    maxBytes: 64 * MIB,
    maxAttempts: 4,
  };
  const org = await createOrganization(testApp.ctx.db);
  const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
  const importId = (await enqueueRecordingImport(deps, {
    organizationId: org.id,
    meetingId: meeting.id,
    externalId: `rec_${meeting.id}`,
    now: clock.now(),
  }))!;
  return { media, deps, logs, metrics, meetingId: meeting.id, organizationId: org.id, importId };
}

async function importRow(id: string) {
  return testApp.ctx.db.recordingImport.findUniqueOrThrow({ where: { id } });
}

/** The bytes held in the complete parts recorded on the import. */
async function recordedBytes(id: string): Promise<number> {
  const parts = (await importRow(id)).uploadedParts as { sizeBytes: number }[];
  return parts.reduce((sum, part) => sum + Number(part.sizeBytes), 0);
}

/** The meeting's recording is in the bucket, byte for byte `expected`, and nothing else is open. */
async function expectStoredCopy(h: Harness, expected: Buffer) {
  const objects = await testApp.ctx.db.storageObject.findMany({
    where: { meetingId: h.meetingId },
  });
  expect(objects).toHaveLength(1);
  const object = objects[0]!;
  expect(object).toMatchObject({ source: "recall", sizeBytes: BigInt(expected.length) });
  expect(object.sha256).toBe(sha256Of(expected));
  // Read back from the bucket: the assembled object is the source's bytes.
  expect(await digestStoredObject(testApp.ctx.storage, object.key)).toEqual({
    sizeBytes: expected.length,
    sha256: sha256Of(expected),
  });
  expect(await s3.openUploads()).toEqual([]);
  const row = await importRow(h.importId);
  expect(row).toMatchObject({ status: "done", storageUploadId: null, uploadKey: null });
}

/** First attempt: the download is cut at about 60 %; the parts it completed are kept. */
async function cutFirstAttempt(h: Harness): Promise<number> {
  h.media.state.cutAfter = Math.floor(TOTAL * 0.6);
  expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("retry_scheduled");
  const held = await recordedBytes(h.importId);
  expect(held).toBeGreaterThanOrEqual(4 * PART);
  expect(held % PART).toBe(0);
  const row = await importRow(h.importId);
  expect(row.storageUploadId).not.toBeNull();
  expect((await s3.openUploads()).map((upload) => upload.uploadId)).toContain(row.storageUploadId);
  clock.advance(31_000);
  return held;
}

const counter = async (metrics: Metrics, name: string) =>
  (await metrics.registry.getSingleMetric(name)!.get()).values;

describe("resumable Recall media imports", () => {
  it("resumes a download cut at 60 % from the last complete part, fetching only the rest", async () => {
    const h = await harness();
    try {
      const held = await cutFirstAttempt(h);
      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");

      const [first, second] = h.media.state.served;
      expect(h.media.state.served).toHaveLength(2);
      expect(first).toMatchObject({ range: undefined, status: 200 });
      expect(second).toEqual({
        range: `bytes=${held}-`,
        ifRange: '"v1"',
        status: 206,
        bytes: TOTAL - held,
      });
      // Downloaded in all: the cut attempt and the rest, not the whole object twice.
      expect(first!.bytes + second!.bytes).toBeLessThanOrEqual(TOTAL + PART);
      await expectStoredCopy(h, source);

      expect(await counter(h.metrics, "zigznote_recording_import_resumes_total")).toEqual([
        expect.objectContaining({ value: 1 }),
      ]);
      expect(await counter(h.metrics, "zigznote_recording_import_resumed_bytes_total")).toEqual([
        expect.objectContaining({ value: held }),
      ]);
      const resumed = h.logs.entries().find((entry) => entry.msg === "recording import resumed");
      expect(resumed).toMatchObject({ importId: h.importId, resumedFromByte: held });
      // The download URL is a secret: its signature is in no log line.
      expect(h.logs.lines.join("\n")).not.toContain("secret-signature");
    } finally {
      await h.media.close();
    }
  });

  it("deletes the object of an upload an attempt completed but never recorded, then starts over", async () => {
    const h = await harness();
    try {
      await cutFirstAttempt(h);
      // The attempt that died after the store assembled its parts, before the recording's row:
      // the upload is gone and its (partial) object sits at the upload's key.
      const row = await importRow(h.importId);
      const leftoverKey = row.uploadKey!;
      const parts = row.uploadedParts as { partNumber: number; sizeBytes: number; etag: string }[];
      await testApp.ctx.storage.resumable!.complete(leftoverKey, row.storageUploadId!, parts);
      expect(await testApp.ctx.storage.exists(leftoverKey)).toBe(true);

      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");
      await expectStoredCopy(h, source);
      expect(await testApp.ctx.storage.exists(leftoverKey)).toBe(false);
      expect(await counter(h.metrics, "zigznote_recording_import_restarts_total")).toEqual([
        expect.objectContaining({ labels: { reason: "upload_gone" }, value: 1 }),
      ]);
    } finally {
      await h.media.close();
    }
  });

  it("starts over cleanly when the source ignores Range", async () => {
    const h = await harness();
    try {
      await cutFirstAttempt(h);
      const oldUpload = (await importRow(h.importId)).storageUploadId;
      h.media.state.honourRange = false;
      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");

      expect(h.media.state.served[1]).toMatchObject({ status: 200, bytes: TOTAL });
      expect(h.media.state.served[1]!.range).toMatch(/^bytes=\d+-$/);
      // One request: the 200 that answered the Range is the whole object, copied from byte 0.
      expect(h.media.state.served).toHaveLength(2);
      await expectStoredCopy(h, source);
      expect((await s3.openUploads()).map((upload) => upload.uploadId)).not.toContain(oldUpload);
      expect(await counter(h.metrics, "zigznote_recording_import_restarts_total")).toEqual([
        expect.objectContaining({ labels: { reason: "range_ignored_or_changed" }, value: 1 }),
      ]);
    } finally {
      await h.media.close();
    }
  });

  it("starts over when the object changed between attempts (If-Range, or the 206's ETag)", async () => {
    const changed = Buffer.from(source);
    changed.fill(7, 1000, 2000);
    changed.fill(8, TOTAL - 1000);

    // A source that honours If-Range: the changed object comes back whole (200).
    const h = await harness();
    try {
      await cutFirstAttempt(h);
      h.media.state.body = changed;
      h.media.state.etag = '"v2"';
      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");
      expect(h.media.state.served[1]).toMatchObject({ ifRange: '"v1"', status: 200, bytes: TOTAL });
      await expectStoredCopy(h, changed);
    } finally {
      await h.media.close();
    }

    // A source that ignores If-Range: the 206 of the new version is refused by its ETag, and the
    // whole object is asked for again.
    const g = await harness();
    try {
      await cutFirstAttempt(g);
      g.media.state.honourIfRange = false;
      g.media.state.body = changed;
      g.media.state.etag = '"v2"';
      expect(await processRecordingImport(g.deps, { importId: g.importId })).toBe("done");
      expect(g.media.state.served.map((served) => served.status)).toEqual([200, 206, 200]);
      expect(g.media.state.served[2]!.range).toBeUndefined();
      await expectStoredCopy(g, changed);
      expect(await counter(g.metrics, "zigznote_recording_import_restarts_total")).toEqual([
        expect.objectContaining({ labels: { reason: "range_mismatch" }, value: 1 }),
      ]);
    } finally {
      await g.media.close();
    }
  });

  it("a worker taking over a dead worker's claim resumes from its parts", async () => {
    const h = await harness();
    try {
      // Worker A copies 60 %, then its link hangs and it renews nothing (as if its instance died).
      h.media.state.stallAfter = Math.floor(TOTAL * 0.6);
      const dying = { ...h.deps, claimRenewalMs: 60 * MINUTE, downloadIdleTimeoutMs: 60_000 };
      const workerA = processRecordingImport(dying, { importId: h.importId });
      for (let i = 0; i < 200 && (await recordedBytes(h.importId)) < 5 * PART; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const held = await recordedBytes(h.importId);
      expect(held).toBeGreaterThanOrEqual(5 * PART);

      // The lease runs out; worker B (another instance's periodic pass) takes the import over.
      clock.advance(16 * MINUTE);
      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");
      expect(h.media.state.served[1]).toEqual({
        range: `bytes=${held}-`,
        ifRange: '"v1"',
        status: 206,
        bytes: TOTAL - held,
      });
      await expectStoredCopy(h, source);

      // A's hung download finally resets: it records nothing and touches nothing.
      h.media.resetStalled();
      expect(await workerA).toBe("not_claimed");
      await expectStoredCopy(h, source);
    } finally {
      await h.media.close();
    }
  });

  it("a meeting deleted mid-copy ends the import with no multipart upload left", async () => {
    const h = await harness();
    try {
      h.media.state.gapMs = 5; // 64 KiB every 5 ms: about half a second in all
      const running = processRecordingImport(h.deps, { importId: h.importId });
      for (let i = 0; i < 200 && (await recordedBytes(h.importId)) < 2 * PART; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await testApp.ctx.db.meeting.update({
        where: { id: h.meetingId },
        data: { deletedAt: clock.now() },
      });
      expect(await running).toBe("failed");
      expect(h.media.state.served[0]!.bytes).toBeLessThan(TOTAL);
      expect(await s3.openUploads()).toEqual([]);
      expect(s3.uploadFolders()).toEqual([]);
      expect(await importRow(h.importId)).toMatchObject({
        status: "failed",
        storageUploadId: null,
        lastError: expect.stringMatching(/deleted/),
      });
      expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: h.meetingId } })).toBe(
        0,
      );
    } finally {
      await h.media.close();
    }

    // Deleted between two attempts: the next attempt gives up at once and aborts the upload.
    const g = await harness();
    try {
      await cutFirstAttempt(g);
      await testApp.ctx.db.meeting.update({
        where: { id: g.meetingId },
        data: { deletedAt: clock.now() },
      });
      expect(await processRecordingImport(g.deps, { importId: g.importId })).toBe("failed");
      expect(g.media.state.served).toHaveLength(1);
      expect(await s3.openUploads()).toEqual([]);
      expect((await importRow(g.importId)).storageUploadId).toBeNull();
    } finally {
      await g.media.close();
    }
  });

  it("a failed import queued again by a later ready event aborts its leftover upload and starts over", async () => {
    const h = await harness();
    try {
      await cutFirstAttempt(h);
      const leftover = (await importRow(h.importId)).storageUploadId;
      // It gave up while the store could not abort its upload: the row still names it.
      await testApp.ctx.db.recordingImport.update({
        where: { id: h.importId },
        data: { status: "failed" },
      });
      // The later ready event (recording.done after bot.done) queues it again.
      const requeued = await enqueueRecordingImport(h.deps, {
        organizationId: h.organizationId,
        meetingId: h.meetingId,
        externalId: `rec_${h.meetingId}`,
        now: clock.now(),
      });
      expect(requeued).toBe(h.importId);
      expect(await processRecordingImport(h.deps, { importId: h.importId })).toBe("done");
      expect(h.media.state.served[1]).toMatchObject({
        range: undefined,
        status: 200,
        bytes: TOTAL,
      });
      expect((await s3.openUploads()).map((upload) => upload.uploadId)).not.toContain(leftover);
      await expectStoredCopy(h, source);
      expect(await counter(h.metrics, "zigznote_recording_import_restarts_total")).toEqual([
        expect.objectContaining({ labels: { reason: "no_validator" }, value: 1 }),
      ]);
    } finally {
      await h.media.close();
    }
  });

  it("the abandoned-uploads job keeps a queued import's upload however old, and aborts an ended one's", async () => {
    const waiting = await harness();
    const ended = await harness();
    try {
      await cutFirstAttempt(waiting);
      await cutFirstAttempt(ended);
      const waitingUpload = (await importRow(waiting.importId)).storageUploadId;
      // An import that gave up while the store failed to abort its upload still names it.
      await testApp.ctx.db.recordingImport.update({
        where: { id: ended.importId },
        data: { status: "failed" },
      });
      const run = await abortAbandonedUploads(
        testApp.ctx.modules.recordings.deps.abandonedUploads,
        {
          // A day and more after both uploads began.
          now: new Date(Date.now() + 25 * 60 * MINUTE),
        },
      );
      expect(run.summary).toMatchObject({ importUploads: 1 });
      expect((await s3.openUploads()).map((upload) => upload.uploadId)).toEqual([waitingUpload]);
      expect((await importRow(ended.importId)).storageUploadId).toBeNull();

      // The queued import still resumes from its parts.
      const held = await recordedBytes(waiting.importId);
      expect(await processRecordingImport(waiting.deps, { importId: waiting.importId })).toBe(
        "done",
      );
      expect(waiting.media.state.served[1]).toMatchObject({ range: `bytes=${held}-`, status: 206 });
      await expectStoredCopy(waiting, source);
    } finally {
      await waiting.media.close();
      await ended.media.close();
    }
  });
});
