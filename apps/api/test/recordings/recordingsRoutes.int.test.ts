import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import request from "supertest";
import { getUsage } from "../../src/recordings";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";
import { closeServer, listen } from "../support/recallEvents";
import { newMeeting, streamPut } from "./transfers";

const execFileAsync = promisify(execFile);
const MAX_BYTES = 256 * 1024 * 1024;
let testApp: TestApp;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  testApp = createTestApp({ env: { RECORDING_MAX_BYTES: String(MAX_BYTES) } });
  ({ server, url: baseUrl } = await listen(testApp.app));
});
afterAll(async () => {
  await closeServer(server);
  await testApp.close();
});

/** Every file under the app's storage folder (temporary uploads included). */
function storedFiles(): string[] {
  const root = testApp.ctx.config.STORAGE_DIR;
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? walk(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
    );
  try {
    return walk(root);
  } catch {
    return [];
  }
}

/** supertest parser that keeps a binary body as one Buffer. */
function binary(res: request.Response, callback: (error: Error | null, body: Buffer) => void) {
  const stream = res as unknown as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.on("end", () => callback(null, Buffer.concat(chunks)));
}

async function storageSum(organizationId: string): Promise<bigint> {
  const objects = await testApp.ctx.db.storageObject.findMany({ where: { organizationId } });
  return objects.reduce((sum, object) => sum + object.sizeBytes, 0n);
}

async function expectUsageMatches(organizationId: string, expected: number): Promise<void> {
  const usage = await getUsage(testApp.ctx.db, organizationId, new Date());
  expect(usage.storageBytes).toBe(await storageSum(organizationId));
  expect(usage.storageBytes).toBe(BigInt(expected));
}

/** Sends `head` as written (for requests a client library would not send) and reads the answer. */
function rawRequest(head: string): Promise<{ status: number; json: unknown }> {
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(head));
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [statusLine = "", ...rest] = text.split("\r\n");
      const body = rest.join("\r\n").split("\r\n\r\n").slice(1).join("\r\n\r\n");
      resolve({ status: Number(statusLine.split(" ")[1]), json: body ? JSON.parse(body) : null });
    });
  });
}

/**
 * `total` bytes in 64 KiB chunks of one reused buffer: the client holds no more than that.
 * `onChunk`, if given, is called with the bytes produced so far before each chunk is handed over.
 */
function generatedBody(total: number, onChunk?: (sent: number) => void): Readable {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      onChunk?.(sent);
      const size = Math.min(chunk.length, total - sent);
      sent += size;
      this.push(size === chunk.length ? chunk : chunk.subarray(0, size));
    },
  });
}

/**
 * The memory this process still reaches (heap and array buffers after a full collection), in
 * bytes: what a buffered body would hold, without the garbage whose collection timing makes RSS
 * and the heap in use wander from run to run.
 */
const liveBytes: () => number = (() => {
  setFlagsFromString("--expose-gc");
  const collect = runInNewContext("gc") as () => void;
  return () => {
    collect();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
})();

describe("/api/v1/meetings/:id/recording", () => {
  it("uploads, downloads, replaces and deletes, with usage equal to the stored sizes", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const url = `/api/v1/meetings/${meetingId}/recording`;
    await expectUsageMatches(caller.organizationId, 0);
    expect((await request(server).get(url).set(caller.headers)).status).toBe(404);

    const first = randomBytes(150_000);
    const put = await request(server)
      .put(url)
      .set(caller.headers)
      .set("Content-Type", "video/mp4")
      .send(first);
    expect(put.status).toBe(201);
    expect(put.body).toEqual({
      id: expect.any(String),
      meetingId,
      contentType: "video/mp4",
      sizeBytes: first.length,
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      source: "upload",
      createdAt: expect.any(String),
    });
    expect(put.body).not.toHaveProperty("key");
    await expectUsageMatches(caller.organizationId, first.length);

    const download = await request(server).get(url).set(caller.headers).buffer(true).parse(binary);
    expect(download.status).toBe(200);
    expect(download.headers["content-type"]).toBe("video/mp4");
    expect(download.headers["content-length"]).toBe(String(first.length));
    expect(download.headers["content-disposition"]).toBe(
      `attachment; filename="recording-${meetingId}.mp4"`,
    );
    expect(download.headers["accept-ranges"]).toBe("bytes");
    expect((download.body as Buffer).equals(first)).toBe(true);

    const ranged = await request(server)
      .get(url)
      .set(caller.headers)
      .set("Range", "bytes=100-1099")
      .buffer(true)
      .parse(binary);
    expect(ranged.status).toBe(206);
    expect(ranged.headers["content-range"]).toBe(`bytes 100-1099/${first.length}`);
    expect(ranged.headers["content-length"]).toBe("1000");
    expect((ranged.body as Buffer).equals(first.subarray(100, 1100))).toBe(true);
    const suffix = await request(server)
      .get(url)
      .set(caller.headers)
      .set("Range", "bytes=-10")
      .buffer(true)
      .parse(binary);
    expect((suffix.body as Buffer).equals(first.subarray(first.length - 10))).toBe(true);
    const beyond = await request(server)
      .get(url)
      .set(caller.headers)
      .set("Range", `bytes=${first.length + 5}-`);
    expect(beyond.status).toBe(416);

    const second = randomBytes(40_000);
    const replaced = await request(server)
      .put(url)
      .set(caller.headers)
      .set("Content-Type", "audio/mpeg")
      .send(second);
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ contentType: "audio/mpeg", sizeBytes: second.length });
    await expectUsageMatches(caller.organizationId, second.length);
    // The replaced file is gone: one file for the organization's one recording.
    const orgDir = `${path.sep}${caller.organizationId}${path.sep}`;
    expect(storedFiles().filter((file) => file.includes(orgDir))).toHaveLength(1);
    const again = await request(server).get(url).set(caller.headers).buffer(true).parse(binary);
    expect(again.headers["content-type"]).toBe("audio/mpeg");
    expect((again.body as Buffer).equals(second)).toBe(true);

    expect((await request(server).delete(url).set(caller.headers)).status).toBe(204);
    await expectUsageMatches(caller.organizationId, 0);
    expect((await request(server).get(url).set(caller.headers)).status).toBe(404);
    expect((await request(server).delete(url).set(caller.headers)).status).toBe(404);
  });

  it("refuses an empty body with 400 EMPTY_RECORDING, keeping the stored recording", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const url = `/api/v1/meetings/${meetingId}/recording`;
    const original = randomBytes(100 * 1024);
    const stored = await request(server)
      .put(url)
      .set(caller.headers)
      .set("Content-Type", "video/mp4")
      .send(original);
    expect(stored.status).toBe(201);
    const files = storedFiles().length;

    // Content-Length: 0, refused before a byte is read.
    const declaredEmpty = await request(server)
      .put(url)
      .set(caller.headers)
      .set("Content-Type", "video/mp4")
      .send(Buffer.alloc(0));
    // A chunked body that ends without a byte: only storage can tell, and must not replace.
    const chunkedEmpty = await streamPut(
      `${baseUrl}${url}`,
      { ...caller.headers, "Content-Type": "video/mp4", "Transfer-Encoding": "chunked" },
      Readable.from([]),
    );
    // No body at all: neither a length nor chunked.
    const noBody = await rawRequest(
      `PUT ${url} HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${caller.headers.Authorization}\r\n` +
        "Content-Type: video/mp4\r\nConnection: close\r\n\r\n",
    );

    for (const answer of [
      { status: declaredEmpty.status, body: declaredEmpty.body as unknown },
      { status: chunkedEmpty.status, body: chunkedEmpty.json },
      { status: noBody.status, body: noBody.json },
    ]) {
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ error: { code: "EMPTY_RECORDING" } });
    }
    const kept = await request(server).get(url).set(caller.headers).buffer(true).parse(binary);
    expect(kept.status).toBe(200);
    expect((kept.body as Buffer).equals(original)).toBe(true);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(1);
    expect(storedFiles()).toHaveLength(files);
    await expectUsageMatches(caller.organizationId, original.length);
  });

  it("refuses media types it does not accept with 415, storing nothing", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const response = await request(server)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("Content-Type", "text/html")
      .send("<html></html>");
    expect(response.status).toBe(415);
    expect(response.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    await expectUsageMatches(caller.organizationId, 0);
  });

  it("the upload's documented curl command works; `curl -T` without Content-Type gets 415 saying why", async () => {
    const key = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read", "meetings:write"] });
    const meetingId = await newMeeting(server, key);
    const doc = (await request(server).get("/openapi.json")).body;
    const description: string = doc.paths["/api/v1/meetings/{id}/recording"].put.description;
    const command = /```sh\n([\s\S]*?)\n```/.exec(description)?.[1];
    expect(command).toContain("curl -T standup.mp4");
    const dir = mkdtempSync(path.join(tmpdir(), "zigznote-curl-"));
    const media = randomBytes(64 * 1024);
    writeFileSync(path.join(dir, "standup.mp4"), media);
    const run = (script: string) =>
      execFileAsync("sh", ["-c", `${script} --silent --show-error`], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "",
          ZIGZNOTE_URL: baseUrl,
          ZIGZNOTE_API_KEY: key.key,
          MEETING_ID: meetingId,
        },
      });

    // The command as documented, run by the real curl.
    const stored = JSON.parse((await run(command!)).stdout) as Record<string, unknown>;
    expect(stored).toMatchObject({ meetingId, contentType: "video/mp4", sizeBytes: media.length });
    const download = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording`)
      .set(key.headers)
      .buffer(true)
      .parse(binary);
    expect((download.body as Buffer).equals(media)).toBe(true);

    // Without its Content-Type line: what the description warns about.
    const bare = command!.replace(/-H "Content-Type: [^"]*" /, "");
    expect(bare).not.toContain("Content-Type");
    const refused = JSON.parse((await run(bare)).stdout) as {
      error: { code: string; message: string; details: Record<string, unknown> };
    };
    expect(refused.error).toEqual({
      code: "UNSUPPORTED_MEDIA_TYPE",
      message: expect.stringContaining('-H "Content-Type: video/mp4"'),
      details: { contentType: null, accepted: expect.arrayContaining(["video/mp4"]) },
    });
    expect(description).toContain("415 `UNSUPPORTED_MEDIA_TYPE`");
    // The first upload is still the recording.
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(1);
  });

  it("answers 413 when Content-Length announces too much, without reading the body", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const before = storedFiles().length;
    const response = await streamPut(
      `${baseUrl}/api/v1/meetings/${meetingId}/recording`,
      {
        ...caller.headers,
        "Content-Type": "video/mp4",
        "Content-Length": String(MAX_BYTES + 1),
      },
      generatedBody(MAX_BYTES + 1),
    );
    expect(response.status).toBe(413);
    expect((response.json as { error: { code: string } }).error.code).toBe("PAYLOAD_TOO_LARGE");
    expect(storedFiles()).toHaveLength(before);
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId } })).toBe(0);
  });

  it("answers 413 when a streamed body passes the limit, leaving no file and no row", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    // An earlier recording stays as it was.
    const earlier = randomBytes(5000);
    await request(server)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("Content-Type", "video/webm")
      .send(earlier);
    const before = storedFiles().length;
    const response = await streamPut(
      `${baseUrl}/api/v1/meetings/${meetingId}/recording`,
      { ...caller.headers, "Content-Type": "video/mp4" },
      generatedBody(MAX_BYTES + 1024 * 1024),
    );
    expect(response.status).toBe(413);
    expect(storedFiles()).toHaveLength(before);
    expect(storedFiles().some((file) => file.includes(`${path.sep}.tmp${path.sep}`))).toBe(false);
    await expectUsageMatches(caller.organizationId, earlier.length);
    const kept = await request(server)
      .get(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .buffer(true)
      .parse(binary);
    expect((kept.body as Buffer).equals(earlier)).toBe(true);
  });

  it("streams a 200 MB upload with flat memory", async () => {
    const caller = await authHeaderFor(testApp);
    const meetingId = await newMeeting(server, caller);
    const total = 200 * 1024 * 1024;
    const every = 16 * 1024 * 1024;
    const baseline = liveBytes();
    // Measured as the client hands over each 16 MiB (client and server share this process): a
    // body buffered anywhere on its way to the file would be live at the later of these points.
    const growth: number[] = [];
    const response = await streamPut(
      `${baseUrl}/api/v1/meetings/${meetingId}/recording`,
      { ...caller.headers, "Content-Type": "video/mp4" },
      generatedBody(total, (sent) => {
        if (sent > 0 && sent % every === 0) growth.push(liveBytes() - baseline);
      }),
    );
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ sizeBytes: total });
    const object = await testApp.ctx.db.storageObject.findFirstOrThrow({ where: { meetingId } });
    expect(statSync(path.join(testApp.ctx.config.STORAGE_DIR, object.key)).size).toBe(total);
    expect(growth).toHaveLength(Math.floor((total - 1) / every));
    // What is in flight: under 1 MiB at most points, up to 18 MiB of array buffers at a few
    // (measured). One buffered copy would pass 64 MiB by the fifth point and reach 192 MiB.
    expect(Math.max(...growth) / (1024 * 1024)).toBeLessThan(64);
    await expectUsageMatches(caller.organizationId, total);
  });
});
