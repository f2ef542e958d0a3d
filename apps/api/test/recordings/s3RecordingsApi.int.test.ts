import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import request from "supertest";
import { abortAbandonedUploads } from "../../src/recordings";
import type { DirectUploadPart } from "../../src/recordings/directUploads";
import { getUsage } from "../../src/recordings";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { startS3Server, type S3TestServer } from "../support/fakes/s3Server";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { filesUnder } from "../support/storageFiles";
import { closeServer, listen } from "../support/recallEvents";
import {
  eventually,
  generatedBody,
  generatedBytes,
  MIB,
  newMeeting,
  sha256Of,
  streamPut,
} from "./transfers";

/**
 * The recordings routes with STORAGE_DRIVER=s3, against s3rver on loopback: streamed uploads
 * into multipart uploads, downloads by presigned redirect, direct uploads.
 */

const MAX_BYTES = 64 * MIB;
const HOUR = 60 * 60 * 1000;
let s3: S3TestServer;
let testApp: TestApp;
let server: Server;
let baseUrl: string;
const clock = new ManualClock();

beforeAll(async () => {
  s3 = await startS3Server();
  testApp = createTestApp({
    clock,
    storage: s3.storage({ keyPrefix: "zigznote/" }),
    env: { ...s3.env("zigznote/"), RECORDING_MAX_BYTES: String(MAX_BYTES) },
  });
  ({ server, url: baseUrl } = await listen(testApp.app));
});
afterAll(async () => {
  await closeServer(server);
  await testApp.close();
  await s3.close();
});
beforeEach(() => clock.set(Date.now()));

/** Files under the app's STORAGE_DIR: with S3 there must be none. */
const localFiles = () => filesUnder(testApp.ctx.config.STORAGE_DIR);

function recordingUrl(meetingId: string, suffix = ""): string {
  return `${baseUrl}/api/v1/meetings/${meetingId}/recording${suffix}`;
}

/** GET the recording without following the redirect. */
function download(caller: AuthenticatedCaller, meetingId: string, init: RequestInit = {}) {
  return fetch(recordingUrl(meetingId), {
    ...init,
    redirect: "manual",
    headers: { ...caller.headers, ...(init.headers as Record<string, string>) },
  });
}

async function objectRow(meetingId: string) {
  return testApp.ctx.db.storageObject.findFirstOrThrow({ where: { meetingId } });
}

describe("PUT and GET /api/v1/meetings/:id/recording with S3", () => {
  it("streams an upload into a multipart upload and answers downloads with a presigned redirect", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const total = 20 * MIB + 321;
    const data = await generatedBytes(total);

    const put = await streamPut(
      recordingUrl(meetingId),
      { ...caller.headers, "Content-Type": "video/mp4", "Content-Length": String(total) },
      generatedBody(total),
    );
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ sizeBytes: total, sha256: sha256Of(data) });
    const row = await objectRow(meetingId);
    expect(await s3.objectKeys()).toEqual([`zigznote/${row.key}`]);
    expect(await s3.openUploads()).toEqual([]);
    expect(localFiles()).toEqual([]);
    expect((await getUsage(testApp.ctx.db, caller.organizationId, clock.now())).storageBytes).toBe(
      BigInt(total),
    );

    const redirect = await download(caller, meetingId);
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("cache-control")).toBe("private, no-store");
    const location = new URL(redirect.headers.get("location")!);
    expect(location.origin).toBe(s3.endpoint);
    expect(location.searchParams.get("X-Amz-Expires")).toBe("300");
    // The store serves the bytes, with the type, the file name and Range.
    const whole = await fetch(location);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("video/mp4");
    expect(whole.headers.get("content-disposition")).toBe(
      `attachment; filename="recording-${meetingId}.mp4"`,
    );
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const ranged = await fetch(location, { headers: { range: "bytes=8388600-8388699" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(8388600, 8388700))).toBe(
      true,
    );

    // The link as JSON for clients that want it.
    const link = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording?redirect=false`)
      .set(caller.headers);
    expect(link.status).toBe(200);
    expect(link.body).toEqual({
      url: expect.stringContaining(`${s3.endpoint}/${s3.bucket}/zigznote/${row.key}?`),
      expiresAt: new Date(clock.now().getTime() + 300_000).toISOString(),
    });
    // A current copy is still a 304, without a trip to the store.
    const notModified = await download(caller, meetingId, {
      headers: { "if-none-match": `"${sha256Of(data)}"` },
    });
    expect(notModified.status).toBe(304);

    // Another organization's caller gets 404, as today.
    const stranger = await authHeaderFor(testApp);
    expect((await download(stranger, meetingId)).status).toBe(404);

    const deleted = await request(server)
      .delete(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers);
    expect(deleted.status).toBe(204);
    expect(await s3.objectKeys()).toEqual([]);
  });

  it("refuses a streamed body over the limit with 413, leaving no object and no parts", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const answer = await streamPut(
      recordingUrl(meetingId),
      { ...caller.headers, "Content-Type": "video/mp4" },
      generatedBody(MAX_BYTES + 3 * MIB),
    );
    expect(answer.status).toBe(413);
    expect(answer.json).toMatchObject({ error: { code: "PAYLOAD_TOO_LARGE" } });
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(0);
    expect(await s3.objectKeys()).toEqual([]);
    expect(await s3.openUploads()).toEqual([]);
    expect(s3.uploadFolders()).toEqual([]);
  });

  it("leaves nothing when the client hangs up in the middle of an upload", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const hangUp = new Error("client gone");
    const body = generatedBody(40 * MIB, {
      onChunk: async (sent) => {
        if (sent < 20 * MIB) return;
        // Parts are in the store by now: the upload is under way when the client goes.
        await eventually(async () => (await s3.openUploads()).length === 1);
        throw hangUp;
      },
    });
    await expect(
      streamPut(
        recordingUrl(meetingId),
        { ...caller.headers, "Content-Type": "video/mp4", "Content-Length": String(40 * MIB) },
        body,
      ),
    ).rejects.toThrow();
    // The server notices the closed connection and aborts the multipart upload.
    await eventually(async () => (await s3.openUploads()).length === 0);
    expect(s3.uploadFolders()).toEqual([]);
    expect(await s3.objectKeys()).toEqual([]);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(0);
  });
});

describe("when the store does not answer", () => {
  it("answers 503 STORAGE_UNAVAILABLE with Retry-After, and records nothing", async () => {
    const down = createTestApp({ storage: s3.storage({ endpoint: "http://127.0.0.1:9" }) });
    try {
      const caller = await authHeaderFor(down);
      const created = await request(down.app)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .send({ title: "Down", meetingUrl: "https://meet.google.com/abc-defg-hij" });
      const meetingId = created.body.id as string;
      const put = await request(down.app)
        .put(`/api/v1/meetings/${meetingId}/recording`)
        .set(caller.headers)
        .set("Content-Type", "video/mp4")
        .send(randomBytes(4096));
      expect(put.status).toBe(503);
      expect(put.headers["retry-after"]).toBe("5");
      expect(put.body.error).toMatchObject({ code: "STORAGE_UNAVAILABLE" });
      expect(await down.ctx.db.storageObject.count({ where: { meetingId } })).toBe(0);
      const upload = await request(down.app)
        .post(`/api/v1/meetings/${meetingId}/recording/uploads`)
        .set(caller.headers)
        .send({ contentType: "video/mp4", sizeBytes: 20 * MIB });
      expect(upload.status).toBe(503);
      expect(upload.body.error.code).toBe("STORAGE_UNAVAILABLE");
      expect(await down.ctx.db.recordingUpload.count({ where: { meetingId } })).toBe(0);
    } finally {
      (down.ctx.storage as ReturnType<S3TestServer["storage"]>).client.destroy();
      await down.close();
    }
  });
});

describe("direct uploads (/api/v1/meetings/:id/recording/uploads)", () => {
  interface UploadBody {
    id: string;
    status: string;
    sizeBytes: number;
    partSizeBytes: number;
    expiresAt: string;
    urlsExpireAt: string | null;
    /** Parts as JSON carries them: the service's part view has only JSON-safe fields. */
    parts: DirectUploadPart[];
  }

  async function startUpload(
    caller: AuthenticatedCaller,
    meetingId: string,
    sizeBytes: number,
  ): Promise<UploadBody> {
    const response = await request(server)
      .post(`/api/v1/meetings/${meetingId}/recording/uploads`)
      .set(caller.headers)
      .send({ contentType: "video/webm", sizeBytes });
    expect(response.status).toBe(201);
    return response.body as UploadBody;
  }

  async function putPart(part: UploadBody["parts"][number], data: Buffer): Promise<number> {
    const response = await fetch(part.url, {
      method: "PUT",
      headers: part.headers,
      body: data.subarray(part.offset, part.offset + part.sizeBytes),
    });
    await response.arrayBuffer();
    return response.status;
  }

  function complete(caller: AuthenticatedCaller, meetingId: string, uploadId: string) {
    return request(server)
      .post(`/api/v1/meetings/${meetingId}/recording/uploads/${uploadId}/complete`)
      .set(caller.headers);
  }

  it("sends a large recording in presigned parts, resumes, and records it like an upload", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const data = randomBytes(20 * MIB + 7);
    const upload = await startUpload(caller, meetingId, data.length);
    expect(upload).toMatchObject({
      status: "pending",
      sizeBytes: data.length,
      partSizeBytes: 8 * MIB,
      expiresAt: new Date(clock.now().getTime() + 23 * HOUR).toISOString(),
      urlsExpireAt: new Date(clock.now().getTime() + 300_000).toISOString(),
    });
    expect(
      upload.parts.map(({ partNumber, offset, sizeBytes, isUploaded }) => ({
        partNumber,
        offset,
        sizeBytes,
        isUploaded,
      })),
    ).toEqual([
      { partNumber: 1, offset: 0, sizeBytes: 8 * MIB, isUploaded: false },
      { partNumber: 2, offset: 8 * MIB, sizeBytes: 8 * MIB, isUploaded: false },
      { partNumber: 3, offset: 16 * MIB, sizeBytes: 4 * MIB + 7, isUploaded: false },
    ]);
    // The bytes go to the store, not through the API.
    expect(new URL(upload.parts[0]!.url).origin).toBe(s3.endpoint);

    expect(await putPart(upload.parts[0]!, data)).toBe(200);
    expect(await putPart(upload.parts[2]!, data)).toBe(200);
    const early = await complete(caller, meetingId, upload.id);
    expect(early.status).toBe(409);
    expect(early.body.error).toMatchObject({
      code: "UPLOAD_INCOMPLETE",
      details: { missingParts: [2], expectedParts: 3 },
    });

    // A part of the wrong length (AWS refuses it: its length is signed; s3rver does not).
    const shortPart = await fetch(upload.parts[1]!.url, {
      method: "PUT",
      body: data.subarray(0, 1000),
    });
    expect(shortPart.status).toBe(200);
    const wrong = await complete(caller, meetingId, upload.id);
    expect(wrong.status).toBe(409);
    expect(wrong.body.error).toMatchObject({
      code: "UPLOAD_SIZE_MISMATCH",
      details: { parts: [{ partNumber: 2, expectedBytes: 8 * MIB, storedBytes: 1000 }] },
    });

    // Resuming: fresh URLs, and which parts the store already holds.
    const resumed = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording/uploads/${upload.id}`)
      .set(caller.headers);
    expect(resumed.status).toBe(200);
    const resumedBody = resumed.body as UploadBody;
    expect(resumedBody.parts.map((part) => part.isUploaded)).toEqual([true, false, true]);
    expect(await putPart(resumedBody.parts[1]!, data)).toBe(200);

    const done = await complete(caller, meetingId, upload.id);
    expect(done.status).toBe(201);
    expect(done.body).toMatchObject({
      meetingId,
      contentType: "video/webm",
      sizeBytes: data.length,
      sha256: sha256Of(data),
      source: "upload",
    });
    expect(await s3.openUploads()).toEqual([]);
    expect(localFiles()).toEqual([]);
    expect((await getUsage(testApp.ctx.db, caller.organizationId, clock.now())).storageBytes).toBe(
      BigInt(data.length),
    );
    const link = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording?redirect=false`)
      .set(caller.headers);
    const stored = await fetch(link.body.url as string);
    expect(Buffer.from(await stored.arrayBuffer()).equals(data)).toBe(true);

    const again = await complete(caller, meetingId, upload.id);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({
      code: "UPLOAD_CLOSED",
      details: { status: "completed" },
    });
    const closed = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording/uploads/${upload.id}`)
      .set(caller.headers);
    expect(closed.body).toMatchObject({ status: "completed", parts: [], urlsExpireAt: null });
  });

  it("sends a small recording in a one-part upload, checks its size, and replaces the earlier one", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const earlier = randomBytes(1000);
    await request(server)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("Content-Type", "video/mp4")
      .send(earlier)
      .expect(201);
    const earlierKey = (await objectRow(meetingId)).key;

    const data = randomBytes(300 * 1024);
    const upload = await startUpload(caller, meetingId, data.length);
    expect(upload.parts).toHaveLength(1);
    expect(upload.parts[0]).toMatchObject({
      partNumber: 1,
      offset: 0,
      sizeBytes: data.length,
      // The type was given when the multipart upload started: no header to send.
      headers: {},
    });
    const missing = await complete(caller, meetingId, upload.id);
    expect(missing.status).toBe(409);
    expect(missing.body.error.code).toBe("UPLOAD_INCOMPLETE");

    // AWS refuses another length (it is signed); this server does not, and the check still holds.
    const short = await fetch(upload.parts[0]!.url, {
      method: "PUT",
      headers: upload.parts[0]!.headers,
      body: data.subarray(0, 1000),
    });
    expect(short.status).toBe(200);
    const mismatch = await complete(caller, meetingId, upload.id);
    expect(mismatch.status).toBe(409);
    expect(mismatch.body.error).toMatchObject({
      code: "UPLOAD_SIZE_MISMATCH",
      details: { parts: [{ partNumber: 1, expectedBytes: data.length, storedBytes: 1000 }] },
    });

    expect(await putPart(upload.parts[0]!, data)).toBe(200);
    const done = await complete(caller, meetingId, upload.id);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ sizeBytes: data.length, sha256: sha256Of(data) });
    // The replaced recording's object is gone; one row remains.
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(1);
    expect(await s3.objectKeys()).not.toContain(`zigznote/${earlierKey}`);
    expect((await getUsage(testApp.ctx.db, caller.organizationId, clock.now())).storageBytes).toBe(
      BigInt(data.length),
    );
  });

  it("lets no part URL write once its upload is completed: no swapped bytes, no uncounted object", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const data = randomBytes(2000);
    const upload = await startUpload(caller, meetingId, data.length);
    expect(upload.parts).toHaveLength(1);
    expect(await putPart(upload.parts[0]!, data)).toBe(200);
    expect((await complete(caller, meetingId, upload.id)).status).toBe(201);
    const { key } = await objectRow(meetingId);

    // The URL is still within its lifetime, but the upload is over: other bytes of the same
    // (signed) length are refused, and the recording stays what was checked and recorded.
    const swapped = randomBytes(data.length);
    expect(await putPart(upload.parts[0]!, swapped)).toBeGreaterThanOrEqual(400);
    const link = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording?redirect=false`)
      .set(caller.headers);
    const stored = await fetch(link.body.url as string);
    expect(Buffer.from(await stored.arrayBuffer()).equals(data)).toBe(true);

    // Deleted: the URL cannot bring the object back outside every row (usage would not count it,
    // and nothing would ever delete it).
    await request(server)
      .delete(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .expect(204);
    expect(await putPart(upload.parts[0]!, data)).toBeGreaterThanOrEqual(400);
    expect(await s3.objectKeys()).not.toContain(`zigznote/${key}`);
  });

  it("records concurrent completions of one upload exactly once", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const data = randomBytes(17 * MIB);
    const upload = await startUpload(caller, meetingId, data.length);
    for (const part of upload.parts) expect(await putPart(part, data)).toBe(200);

    const answers = await Promise.all(
      Array.from({ length: 6 }, () => complete(caller, meetingId, upload.id)),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    for (const answer of answers.filter((candidate) => candidate.status !== 201)) {
      expect(answer.status).toBe(409);
      expect(answer.body.error.code).toBe("UPLOAD_CLOSED");
    }
    const rows = await testApp.ctx.db.storageObject.findMany({ where: { meetingId } });
    expect(rows).toHaveLength(1);
    expect(await s3.objectKeys()).toContain(`zigznote/${rows[0]!.key}`);
    expect(rows[0]!.sha256).toBe(sha256Of(data));
  });

  it("refuses a declared size above RECORDING_MAX_BYTES before anything is started", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const response = await request(server)
      .post(`/api/v1/meetings/${meetingId}/recording/uploads`)
      .set(caller.headers)
      .send({ contentType: "video/mp4", sizeBytes: MAX_BYTES + 1 });
    expect(response.status).toBe(413);
    expect(response.body.error).toMatchObject({
      code: "PAYLOAD_TOO_LARGE",
      details: { maxBytes: MAX_BYTES, sizeBytes: MAX_BYTES + 1 },
    });
    expect(await testApp.ctx.db.recordingUpload.count({ where: { meetingId } })).toBe(0);
    expect(await s3.openUploads()).toEqual([]);
  });

  it("hides an upload from another organization", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const upload = await startUpload(caller, meetingId, 1000);
    const stranger = await authHeaderFor(testApp);
    const strangersMeeting = await newMeeting(server, stranger);
    for (const path of [
      `/api/v1/meetings/${meetingId}/recording/uploads/${upload.id}`,
      `/api/v1/meetings/${strangersMeeting}/recording/uploads/${upload.id}`,
    ]) {
      const read = await request(server).get(path).set(stranger.headers);
      expect(read.status).toBe(404);
      const completed = await request(server).post(`${path}/complete`).set(stranger.headers);
      expect(completed.status).toBe(404);
    }
  });

  it("closes an upload after its window, and the job deletes its parts and object after 24 h", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const multipart = await startUpload(caller, meetingId, 9 * MIB);
    const data = randomBytes(9 * MIB);
    expect(await putPart(multipart.parts[0]!, data)).toBe(200);
    const single = await startUpload(caller, meetingId, 2000);
    expect(await putPart(single.parts[0]!, randomBytes(2000))).toBe(200);
    const singleKey = (
      await testApp.ctx.db.recordingUpload.findUniqueOrThrow({ where: { id: single.id } })
    ).key;
    const multipartKey = (
      await testApp.ctx.db.recordingUpload.findUniqueOrThrow({ where: { id: multipart.id } })
    ).key;
    /** These two uploads still open in the store (other tests leave theirs pending). */
    const openHere = async () =>
      (await s3.openUploads()).filter((open) =>
        [singleKey, multipartKey].some((key) => open.key === `zigznote/${key}`),
      ).length;
    // Both are multipart uploads: their parts are not objects yet.
    expect(await s3.objectKeys()).not.toContain(`zigznote/${singleKey}`);
    expect(await openHere()).toBe(2);

    // 23 h later the window is over: completing says so and records nothing.
    clock.set(clock.now().getTime() + 23 * HOUR);
    const late = await complete(caller, meetingId, single.id);
    expect(late.status).toBe(409);
    expect(late.body.error).toMatchObject({
      code: "UPLOAD_CLOSED",
      details: { status: "expired" },
    });
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(0);

    // Not yet 24 h: the job leaves them.
    const job = testApp.ctx.modules.recordings.deps.abandonedUploads;
    expect((await abortAbandonedUploads(job, { now: clock.now() })).rowsAffected).toBe(0);
    expect(await openHere()).toBe(2);

    clock.set(clock.now().getTime() + HOUR + 1000);
    const result = await abortAbandonedUploads(job, { now: clock.now() });
    // These two, and any other test's upload left pending (the job sweeps the whole database).
    expect(result.rowsAffected).toBeGreaterThanOrEqual(2);
    expect(await s3.openUploads()).toEqual([]);
    expect(s3.uploadFolders()).toEqual([]);
    expect(await s3.objectKeys()).not.toContain(`zigznote/${singleKey}`);
    const rows = await testApp.ctx.db.recordingUpload.findMany({
      where: { id: { in: [multipart.id, single.id] } },
    });
    expect(rows.map((row) => row.status)).toEqual(["aborted", "aborted"]);
    // A second run finds nothing.
    expect((await abortAbandonedUploads(job, { now: clock.now() })).rowsAffected).toBe(0);
  });
});

describe("direct uploads on local storage", () => {
  it("answers 503 PROVIDER_NOT_CONFIGURED naming the variables, and downloads still stream", async () => {
    const local = createTestApp();
    try {
      const caller = await authHeaderFor(local);
      const created = await request(local.app)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .send({ title: "Local", meetingUrl: "https://meet.google.com/abc-defg-hij" });
      const meetingId = created.body.id as string;
      const response = await request(local.app)
        .post(`/api/v1/meetings/${meetingId}/recording/uploads`)
        .set(caller.headers)
        .send({ contentType: "video/mp4", sizeBytes: 1000 });
      expect(response.status).toBe(503);
      expect(response.body.error).toMatchObject({
        code: "PROVIDER_NOT_CONFIGURED",
        details: { variables: ["STORAGE_DRIVER", "S3_BUCKET", "S3_REGION"] },
      });
      expect(await local.ctx.db.recordingUpload.count({ where: { meetingId } })).toBe(0);

      const data = randomBytes(2048);
      await request(local.app)
        .put(`/api/v1/meetings/${meetingId}/recording`)
        .set(caller.headers)
        .set("Content-Type", "audio/ogg")
        .send(data)
        .expect(201);
      // `redirect=false` has no link to give on local disk: the bytes come as today.
      const streamed = await request(local.app)
        .get(`/api/v1/meetings/${meetingId}/recording?redirect=false`)
        .set(caller.headers)
        .buffer(true)
        .parse((res, callback) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => callback(null, Buffer.concat(chunks)));
        });
      expect(streamed.status).toBe(200);
      expect(streamed.headers["content-type"]).toBe("audio/ogg");
      expect((streamed.body as Buffer).equals(data)).toBe(true);
    } finally {
      await local.close();
    }
  });
});
