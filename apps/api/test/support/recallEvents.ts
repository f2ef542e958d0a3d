import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { uniqueSuffix } from "@zigznote/database/testing";
import type { Express } from "express";
import request from "supertest";
import type { AppContext } from "../../src/context";
import { svixHeaders } from "./webhookSigning";

/** Recall's events as its docs show them, signed by the real `svix` library with our secret. */

export interface RecallStatusInput {
  recallBotId: string;
  code: string;
  subCode?: string | null;
  at: Date;
  /** The bot's metadata (what botService sent at creation). */
  metadata?: Record<string, unknown>;
}

/** Legacy `bot.status_change`: `{ event, data: { bot_id, status: {...} } }`. */
export function legacyStatusEvent(input: RecallStatusInput): string {
  return JSON.stringify({
    event: "bot.status_change",
    data: {
      bot_id: input.recallBotId,
      status: {
        code: input.code,
        sub_code: input.subCode ?? null,
        message: null,
        created_at: input.at.toISOString(),
      },
    },
  });
}

/** Per-status `bot.<code>`: `{ event, data: { data: {...}, bot: { id, metadata } } }`. */
export function botStatusEvent(input: RecallStatusInput): string {
  return JSON.stringify({
    event: `bot.${input.code}`,
    data: {
      data: {
        code: input.code,
        sub_code: input.subCode ?? null,
        updated_at: input.at.toISOString(),
      },
      bot: { id: input.recallBotId, metadata: input.metadata ?? {} },
    },
  });
}

/** `recording.done` for the bot's recording. */
export function recordingDoneEvent(input: {
  recallBotId: string;
  recordingId: string;
  at: Date;
  metadata?: Record<string, unknown>;
}): string {
  return JSON.stringify({
    event: "recording.done",
    data: {
      data: { code: "done", sub_code: null, updated_at: input.at.toISOString() },
      recording: { id: input.recordingId, metadata: {} },
      bot: { id: input.recallBotId, metadata: input.metadata ?? {} },
    },
  });
}

/** Posts one signed delivery to /webhooks/recall (a new Svix message id unless given). */
export async function postRecallEvent(
  app: Express | Server,
  secret: string,
  body: string,
  msgId = `msg_${uniqueSuffix()}`,
): Promise<request.Response> {
  return request(app)
    .post("/webhooks/recall")
    .set(svixHeaders(secret, msgId, body))
    .send(body);
}

/** Waits for the app's webhook after-commit tasks (media copies, leave calls) to settle. */
export async function webhookTasksSettled(
  ctx: Pick<AppContext, "webhooks" | "providerCalls">,
): Promise<void> {
  await ctx.webhooks.idle();
  // The provider calls the events queued (a deleted meeting's bot sent home) start after commit.
  await ctx.providerCalls.idle();
}

/** Listens on 127.0.0.1 at a free port (one server for many concurrent requests). */
export async function listen(app: Express): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A media host like the pre-signed links Recall hands out; counts downloads. */
export async function startMediaServer(
  payload: Buffer,
): Promise<{ url: string; downloads: () => number; close: () => Promise<void> }> {
  let downloads = 0;
  const server = createServer((_req, res) => {
    downloads += 1;
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": payload.length });
    res.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/media/video_mixed.mp4?X-Amz-Signature=test`,
    downloads: () => downloads,
    close: () => closeServer(server),
  };
}
