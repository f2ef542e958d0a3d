import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buffer } from "node:stream/consumers";
import { createMeeting, createOrganization } from "@zigznote/database/testing";
import {
  enqueueRecordingImport,
  processDueRecordingImports,
  processRecordingImport,
  type RecordingImportDeps,
} from "../../src/recordings";
import { openRecording } from "../../src/recordings/recordingService";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";

/** A media host like the signed URLs Recall hands out: serves bytes, can fail on demand. */
function startMediaServer(payload: Buffer) {
  const state = {
    downloads: 0,
    failuresLeft: 0,
    /**
     * Sends the body in `chunks` parts `gapMs` apart (a slow link), and stops for good after
     * `stallAfter` parts if set (a link that hangs).
     */
    drip: null as null | { chunks: number; gapMs: number; stallAfter?: number },
    /** Downloads whose connection closed before the whole body was sent. */
    cut: 0,
  };
  const server: Server = createServer((_req, res) => {
    state.downloads += 1;
    if (state.failuresLeft > 0) {
      state.failuresLeft -= 1;
      res.writeHead(503).end("try later");
      return;
    }
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": payload.length });
    const drip = state.drip;
    if (!drip) {
      res.end(payload);
      return;
    }
    const size = Math.ceil(payload.length / drip.chunks);
    let sent = 0;
    const timer = setInterval(() => {
      if (drip.stallAfter !== undefined && sent === drip.stallAfter) return;
      res.write(payload.subarray(sent * size, (sent + 1) * size));
      sent += 1;
      if (sent === drip.chunks) {
        clearInterval(timer);
        res.end();
      }
    }, drip.gapMs);
    res.on("close", () => {
      clearInterval(timer);
      if (sent < drip.chunks) state.cut += 1;
    });
  });
  return new Promise<{ url: string; state: typeof state; close: () => Promise<void> }>(
    (resolve) => {
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        resolve({
          url: `http://127.0.0.1:${port}/media/video.mp4?X-Amz-Signature=abc`,
          state,
          close: () => new Promise((done) => server.close(() => done())),
        });
      });
    },
  );
}

describe("recording imports (Recall media copy)", () => {
  const payload = Buffer.alloc(256 * 1024, 9);
  let testApp: TestApp;
  let media: Awaited<ReturnType<typeof startMediaServer>>;
  const clock = new ManualClock();
  let deps: RecordingImportDeps;

  beforeAll(async () => {
    testApp = createTestApp({ clock });
    media = await startMediaServer(payload);
    deps = {
      db: testApp.ctx.db,
      storage: testApp.ctx.storage,
      logger: testApp.ctx.logger,
      now: () => clock.now(),
      resolveMedia: () => Promise.resolve({ url: media.url, contentType: "video/mp4" }),
      maxBytes: 10 * 1024 * 1024,
      maxAttempts: 3,
    };
  });
  afterAll(async () => {
    await media.close();
    await testApp.close();
  });

  /** Queues the import of `externalId` for the meeting at the test clock's now. */
  function enqueueImport(organizationId: string, meetingId: string, externalId: string) {
    return enqueueRecordingImport(
      { db: testApp.ctx.db },
      { organizationId, meetingId, externalId, now: clock.now() },
    );
  }

  /** A fresh organization and meeting (clock set to now) with one import queued for it. */
  async function meetingWithPendingImport() {
    clock.set(Date.now());
    const org = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    const id = (await enqueueImport(org.id, meeting.id, `rec_${meeting.id}`))!;
    return { org, meeting, id };
  }

  it("copies once when the ready event is delivered several times, even concurrently", async () => {
    clock.set(Date.now());
    media.state.downloads = 0;
    const org = await createOrganization(testApp.ctx.db);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: org.id });
    const externalId = `rec_${meeting.id}`;
    const enqueued = await Promise.all(
      Array.from({ length: 5 }, () => enqueueImport(org.id, meeting.id, externalId)),
    );
    const ids = enqueued.filter((id): id is string => id !== null);
    expect(ids).toHaveLength(1);
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, () => processRecordingImport(deps, { importId: ids[0]! })),
    );
    expect(outcomes.filter((o) => o === "done")).toHaveLength(1);
    expect(outcomes.filter((o) => o === "not_claimed")).toHaveLength(4);
    expect(media.state.downloads).toBe(1);

    const objects = await testApp.ctx.db.storageObject.findMany({
      where: { meetingId: meeting.id },
    });
    expect(objects).toHaveLength(1);
    expect(objects[0]).toMatchObject({ source: "recall", sizeBytes: BigInt(payload.length) });
    const opened = await openRecording(deps, { organizationId: org.id, meetingId: meeting.id });
    expect((await buffer(opened.body)).equals(payload)).toBe(true);

    // A redelivery after completion queues nothing.
    expect(await enqueueImport(org.id, meeting.id, externalId)).toBeNull();
  });

  it("retries a failed download with backoff until it lands", async () => {
    const { meeting, id } = await meetingWithPendingImport();
    media.state.failuresLeft = 1;

    expect(await processRecordingImport(deps, { importId: id })).toBe("retry_scheduled");
    const pending = await testApp.ctx.db.recordingImport.findUniqueOrThrow({ where: { id } });
    expect(pending).toMatchObject({
      status: "pending",
      attempts: 1,
      lastError: "media download answered 503",
    });
    expect(pending.nextAttemptAt.getTime()).toBeGreaterThan(clock.now().getTime());
    expect(await processRecordingImport(deps, { importId: id })).toBe("not_claimed"); // not due yet

    clock.advance(60_000);
    const pass = await processDueRecordingImports(deps, { batchSize: 10, concurrency: 2 });
    expect(pass.done).toBeGreaterThanOrEqual(1);
    expect((await testApp.ctx.db.recordingImport.findUniqueOrThrow({ where: { id } })).status).toBe(
      "done",
    );
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(1);
  });

  it("gives up after the last attempt and stores nothing", async () => {
    const { meeting, id } = await meetingWithPendingImport();
    const failing = {
      ...deps,
      resolveMedia: () => Promise.reject(new Error("recall: bot has no recording")),
    };
    const outcomes: string[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      outcomes.push(await processRecordingImport(failing, { importId: id }));
      clock.advance(2 * 60 * 60 * 1000);
    }
    expect(outcomes).toEqual(["retry_scheduled", "retry_scheduled", "failed"]);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(0);
  });

  it("gives up at once on a meeting deleted before the copy, downloading nothing", async () => {
    const { meeting, id } = await meetingWithPendingImport();
    media.state.downloads = 0;
    await testApp.ctx.db.meeting.update({
      where: { id: meeting.id },
      data: { deletedAt: clock.now() },
    });
    expect(await processRecordingImport(deps, { importId: id })).toBe("failed");
    expect(media.state.downloads).toBe(0);
    const row = await testApp.ctx.db.recordingImport.findUniqueOrThrow({ where: { id } });
    expect(row).toMatchObject({ status: "failed", lastError: expect.stringMatching(/deleted/) });
    // Not retried by the periodic pass either.
    clock.advance(2 * 60 * 60 * 1000);
    expect(await processRecordingImport(deps, { importId: id })).toBe("not_claimed");
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(0);
  });

  it("does not download again a recording larger than the limit", async () => {
    const { meeting, id } = await meetingWithPendingImport();
    media.state.downloads = 0;
    const small = { ...deps, maxBytes: 1024 };
    expect(await processRecordingImport(small, { importId: id })).toBe("failed");
    expect(media.state.downloads).toBe(1);
    clock.advance(2 * 60 * 60 * 1000);
    expect(await processRecordingImport(small, { importId: id })).toBe("not_claimed");
    expect(media.state.downloads).toBe(1);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(0);
  });

  it("copies a slow download that keeps moving, and gives up one that stalls (retried later)", async () => {
    const patient = { ...deps, downloadIdleTimeoutMs: 250 };
    try {
      // 20 parts 60 ms apart: 1.2 s in all, far over the idle limit, never idle that long.
      media.state.drip = { chunks: 20, gapMs: 60 };
      const slow = await meetingWithPendingImport();
      expect(await processRecordingImport(patient, { importId: slow.id })).toBe("done");
      const opened = await openRecording(deps, {
        organizationId: slow.org.id,
        meetingId: slow.meeting.id,
      });
      expect((await buffer(opened.body)).equals(payload)).toBe(true);

      // Half the parts, then nothing: given up after the idle limit, the connection closed.
      media.state.drip = { chunks: 20, gapMs: 20, stallAfter: 10 };
      media.state.cut = 0;
      const stalled = await meetingWithPendingImport();
      const started = Date.now();
      expect(await processRecordingImport(patient, { importId: stalled.id })).toBe(
        "retry_scheduled",
      );
      expect(Date.now() - started).toBeLessThan(5000);
      const row = await testApp.ctx.db.recordingImport.findUniqueOrThrow({
        where: { id: stalled.id },
      });
      expect(row).toMatchObject({ status: "pending", lastError: expect.stringMatching(/stalled/) });
      expect(
        await testApp.ctx.db.storageObject.count({ where: { meetingId: stalled.meeting.id } }),
      ).toBe(0);
      for (let i = 0; i < 50 && media.state.cut === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(media.state.cut).toBe(1);
    } finally {
      media.state.drip = null;
    }
  });

  it("keeps the claim of a copy that runs longer than the lease: nobody takes it over", async () => {
    const renewing = { ...deps, claimRenewalMs: 40 };
    try {
      media.state.drip = { chunks: 20, gapMs: 50 };
      media.state.downloads = 0;
      const { meeting, id } = await meetingWithPendingImport();
      const workerA = processRecordingImport(renewing, { importId: id });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The lease (15 min) runs out on the clock while A still copies; A renews its claim.
      clock.advance(16 * 60 * 1000);
      await new Promise((resolve) => setTimeout(resolve, 150));
      // Another instance's periodic pass finds the import held.
      expect(await processRecordingImport(deps, { importId: id })).toBe("not_claimed");
      expect(await workerA).toBe("done");
      expect(media.state.downloads).toBe(1);
      expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(
        1,
      );
    } finally {
      media.state.drip = null;
    }
  });

  it("keeps the outcome of the worker that took over a claim whose lease ran out", async () => {
    const { meeting, id } = await meetingWithPendingImport();
    // Worker A claims the copy, then hangs asking Recall for the link (longer than the lease).
    let failA!: (error: Error) => void;
    const slow = {
      ...deps,
      resolveMedia: () => new Promise<never>((_resolve, reject) => (failA = reject)),
    };
    const workerA = processRecordingImport(slow, { importId: id });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Worker B (another instance's periodic pass) takes the expired claim over and copies it.
    clock.advance(16 * 60 * 1000);
    expect(await processRecordingImport(deps, { importId: id })).toBe("done");
    // A finally fails: that must not undo B's copy.
    failA(new Error("recall: read timed out"));
    await workerA;
    const row = await testApp.ctx.db.recordingImport.findUniqueOrThrow({ where: { id } });
    expect(row.status).toBe("done");
    expect(row.storageObjectId).not.toBeNull();
    clock.advance(2 * 60 * 60 * 1000);
    expect(await processRecordingImport(deps, { importId: id })).toBe("not_claimed");
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(1);
  });
});
