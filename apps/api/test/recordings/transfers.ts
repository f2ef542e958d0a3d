import { createHash } from "node:crypto";
import { request as httpRequest, type Server } from "node:http";
import { Readable } from "node:stream";
import request from "supertest";
import type { AuthenticatedCaller } from "../support/auth";

/** What the recordings tests send and read over plain HTTP (streams, redirects, raw parts). */

export const MIB = 1024 * 1024;

export function sha256Of(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * `total` bytes of a deterministic pattern in 1 MiB chunks made on the fly (the sender holds no
 * more than one chunk); `onChunk` runs before each chunk is handed over.
 */
export function generatedBody(
  total: number,
  options: { onChunk?: (sent: number) => void | Promise<void> } = {},
): Readable {
  const chunk = Buffer.alloc(MIB);
  for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
  let sent = 0;
  return Readable.from(
    (async function* () {
      while (sent < total) {
        await options.onChunk?.(sent);
        const size = Math.min(chunk.length, total - sent);
        sent += size;
        yield size === chunk.length ? chunk : chunk.subarray(0, size);
      }
    })(),
  );
}

/** The bytes `generatedBody(total)` sends, at once (for comparisons in tests). */
export async function generatedBytes(total: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of generatedBody(total)) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts);
}

export interface PutAnswer {
  status: number;
  json: unknown;
}

/**
 * A raw PUT with a streamed body (chunked unless a length is given). Resolves with the answer
 * even if the server closes the connection before the whole body was sent; rejects when the
 * connection fails before any answer.
 */
export function streamPut(
  url: string,
  headers: Record<string, string>,
  body: Readable,
): Promise<PutAnswer> {
  return new Promise((resolve, reject) => {
    let isAnswered = false;
    const req = httpRequest(url, { method: "PUT", headers }, (res) => {
      isAnswered = true;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let json: unknown = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = text;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on("error", (error) => {
      if (isAnswered) return;
      reject(error);
    });
    body.on("error", (error) => req.destroy(error));
    body.pipe(req);
  });
}

/** Polls `check` until it returns true (or fails after `timeoutMs`). */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Creates a meeting to record as `caller` through the app listening on `server`; its id. */
export async function newMeeting(
  server: Server,
  caller: Pick<AuthenticatedCaller, "headers">,
): Promise<string> {
  const response = await request(server)
    .post("/api/v1/meetings")
    .set(caller.headers)
    .send({ title: "Recorded", meetingUrl: "https://meet.google.com/abc-defg-hij" });
  expect(response.status).toBe(201);
  return response.body.id as string;
}
