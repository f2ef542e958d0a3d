import { randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createBot as createBotRow, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { getUsage } from "../../src/recordings";
import { authHeaderFor } from "../support/auth";
import { captureLogs, LEVEL, type CapturedLogs } from "../support/logCapture";
import type { FakeRecall } from "../support/fakes/recallServer";
import type { TestApp } from "../support/helpers";
import {
  meetingWithBot,
  startRecallTestApp,
  type MeetingWithBot,
  type RecallTestApp,
} from "../support/recallApp";
import {
  botStatusEvent,
  legacyStatusEvent,
  postRecallEvent,
  recordingDoneEvent,
  startMediaServer,
  webhookTasksSettled,
} from "../support/recallEvents";
import { newSvixSecret } from "../support/webhookSigning";

const secret = newSvixSecret();
let fixture: RecallTestApp;
let recall: FakeRecall;
let testApp: TestApp;
let server: Server;
let logs: CapturedLogs;

beforeAll(async () => {
  logs = captureLogs("info");
  fixture = await startRecallTestApp({
    logger: logs.logger,
    env: { RECALL_WEBHOOK_SECRET: secret, RECALL_RETRY_BASE_MS: "10" },
  });
  ({ recall, testApp, server } = fixture);
});
afterAll(() => fixture.close());

async function currentBot(sent: MeetingWithBot) {
  const response = await request(server)
    .get(`/api/v1/meetings/${sent.meetingId}/bot`)
    .set(sent.caller.headers);
  return response.body as { status: string; subCode: string | null; terminalReason: string | null };
}

describe("POST /webhooks/recall: bot statuses", () => {
  it("ends in the latest status when events arrive out of order and duplicated", async () => {
    const sent = await meetingWithBot(fixture);
    const t0 = Date.now() + 1000;
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const events = [
      { code: "joining_call", at: at(1) },
      { code: "in_waiting_room", at: at(2) },
      { code: "in_call_not_recording", at: at(3) },
      { code: "in_call_recording", at: at(4) },
    ].map((event) => ({
      msgId: `msg_${uniqueSuffix()}`,
      body: botStatusEvent({ recallBotId: sent.recallBotId, metadata: sent.metadata, ...event }),
    }));
    // Newest first, each twice (a Svix retry keeps its message id), two at a time.
    const deliveries = [...events].reverse().flatMap((event) => [event, event]);
    for (let i = 0; i < deliveries.length; i += 2) {
      const pair = deliveries.slice(i, i + 2);
      const responses = await Promise.all(
        pair.map((delivery) => postRecallEvent(server, secret, delivery.body, delivery.msgId)),
      );
      for (const response of responses) expect([200]).toContain(response.status);
    }
    // The same event again under a new message id (Recall re-sent it) changes nothing either.
    await postRecallEvent(server, secret, events[1]!.body);
    expect((await currentBot(sent)).status).toBe("in_call_recording");
    const meeting = await request(server)
      .get(`/api/v1/meetings/${sent.meetingId}`)
      .set(sent.caller.headers);
    expect(meeting.body.status).toBe("recording");
  });

  it("keeps fatal's sub code, in the legacy bot.status_change shape too, and fatal is final", async () => {
    const sent = await meetingWithBot(fixture);
    const at = Date.now() + 1000;
    const fatal = await postRecallEvent(
      server,
      secret,
      legacyStatusEvent({
        recallBotId: sent.recallBotId,
        code: "fatal",
        subCode: "bot_kicked_from_waiting_room",
        at: new Date(at),
      }),
    );
    expect(fatal.status).toBe(200);
    await postRecallEvent(
      server,
      secret,
      botStatusEvent({
        recallBotId: sent.recallBotId,
        metadata: sent.metadata,
        code: "in_call_recording",
        at: new Date(at + 5000),
      }),
    );
    expect(await currentBot(sent)).toMatchObject({
      status: "fatal",
      subCode: "bot_kicked_from_waiting_room",
      terminalReason: "fatal: bot_kicked_from_waiting_room",
    });
    const meeting = await request(server)
      .get(`/api/v1/meetings/${sent.meetingId}`)
      .set(sent.caller.headers);
    expect(meeting.body.status).toBe("failed");
  });

  it("fails the delivery while the bot's create answer is not recorded, and applies the retry", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server).post("/api/v1/meetings").set(caller.headers).send({
      title: "Race",
      meetingUrl: "https://teams.microsoft.com/meet/23456789012345?p=AbCdEf",
    });
    const reserved = await createBotRow(testApp.ctx.db, await dbMeeting(meeting.body.id), {
      recallBotId: null,
      status: "pending",
      lastStatusAt: new Date(Date.now() - 60_000),
    });
    const recallBotId = randomUUID();
    const body = botStatusEvent({
      recallBotId,
      code: "joining_call",
      at: new Date(),
      metadata: { botId: reserved.id, meetingId: meeting.body.id },
    });
    const msgId = `msg_${uniqueSuffix()}`;
    const early = await postRecallEvent(server, secret, body, msgId);
    expect(early.status).toBe(500);
    expect(early.body.error.code).toBe("WEBHOOK_HANDLER_FAILED");
    expect(await testApp.ctx.db.processedWebhook.count({ where: { eventId: msgId } })).toBe(0);

    // The create answer is recorded; Recall's retry (same message id) now applies.
    await testApp.ctx.db.bot.update({
      where: { id: reserved.id },
      data: { recallBotId, status: "ready" },
    });
    const retry = await postRecallEvent(server, secret, body, msgId);
    expect(retry.status).toBe(200);
    expect(
      (await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: reserved.id } })).status,
    ).toBe("joining_call");
  });

  it("acknowledges a legacy status of a bot that is not ours, once, with one warning", async () => {
    // One Recall does not know (another workspace's), one made elsewhere in ours (no botId).
    const elsewhere = await makeRecallBot({ meetingId: randomUUID() });
    for (const recallBotId of [randomUUID(), elsewhere]) {
      const msgId = `msg_${uniqueSuffix()}`;
      const body = legacyStatusEvent({ recallBotId, code: "in_call_recording", at: new Date() });
      const since = logs.lines.length;
      const response = await postRecallEvent(server, secret, body, msgId);
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ received: true });
      const logged = logs.entries().slice(since);
      expect(logged.filter((entry) => entry.level >= LEVEL.warn)).toEqual([
        expect.objectContaining({ level: LEVEL.warn, recallBotId }),
      ]);
      expect(logs.lines.slice(since).join("\n")).not.toContain(recall.apiKey);
      // Only the claim is written; Recall's retry is a duplicate and asks Recall nothing more.
      expect(await testApp.ctx.db.processedWebhook.count({ where: { eventId: msgId } })).toBe(1);
      expect(await testApp.ctx.db.bot.count({ where: { recallBotId } })).toBe(0);
      const asked = recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`).length;
      expect(asked).toBe(1);
      const retry = await postRecallEvent(server, secret, body, msgId);
      expect(retry.body).toEqual({ received: true, duplicate: true });
      expect(recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`)).toHaveLength(asked);
    }
  });

  it("fails a legacy status while our bot's create answer is not recorded, and applies the retry", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "Legacy race", meetingUrl: "https://meet.google.com/abc-wxyz-efg" });
    const reserved = await createBotRow(testApp.ctx.db, await dbMeeting(meeting.body.id), {
      recallBotId: null,
      status: "pending",
      lastStatusAt: new Date(Date.now() - 60_000),
    });
    const recallBotId = await makeRecallBot({ botId: reserved.id, meetingId: meeting.body.id });
    const body = legacyStatusEvent({ recallBotId, code: "joining_call", at: new Date() });
    const msgId = `msg_${uniqueSuffix()}`;
    const early = await postRecallEvent(server, secret, body, msgId);
    expect(early.status).toBe(500);
    expect(await testApp.ctx.db.processedWebhook.count({ where: { eventId: msgId } })).toBe(0);

    await testApp.ctx.db.bot.update({
      where: { id: reserved.id },
      data: { recallBotId, status: "ready" },
    });
    const retry = await postRecallEvent(server, secret, body, msgId);
    expect(retry.status).toBe(200);
    expect(
      (await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: reserved.id } })).status,
    ).toBe("joining_call");
    // A bot we know is applied without asking Recall.
    expect(recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`)).toHaveLength(1);
  });

  it("tells a Recall bot of a released reservation to leave, and acknowledges", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "Lost answer", meetingUrl: "https://meet.google.com/xyz-abcd-efg" });
    const released = await createBotRow(testApp.ctx.db, await dbMeeting(meeting.body.id), {
      recallBotId: null,
      status: "failed",
      terminalReason: "recall_create_failed: RECALL_UNAVAILABLE: no answer",
    });
    // Recall made the bot although every answer was lost.
    const made = await fetch(`${recall.baseUrl}/api/v1/bot/`, {
      method: "POST",
      headers: { Authorization: `Token ${recall.apiKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        meeting_url: "https://meet.google.com/xyz-abcd-efg",
        metadata: { botId: released.id },
      }),
    });
    const orphan = (await made.json()) as { id: string; metadata: Record<string, unknown> };

    const response = await postRecallEvent(
      server,
      secret,
      botStatusEvent({
        recallBotId: orphan.id,
        metadata: orphan.metadata,
        code: "in_call_recording",
        at: new Date(),
      }),
    );
    expect(response.status).toBe(200);
    await webhookTasksSettled(testApp.ctx);
    expect(recall.requestsTo("POST", `/api/v1/bot/${orphan.id}/leave_call/`)).toHaveLength(1);
    // Our row stays released; nothing else changed.
    expect(
      (await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: released.id } })).status,
    ).toBe("failed");
  });
});

/** A bot made at (fake) Recall directly, with this metadata; its Recall id. */
async function makeRecallBot(metadata: Record<string, unknown>): Promise<string> {
  const made = await fetch(`${recall.baseUrl}/api/v1/bot/`, {
    method: "POST",
    headers: { Authorization: `Token ${recall.apiKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ meeting_url: "https://meet.google.com/abc-wxyz-efg", metadata }),
  });
  return ((await made.json()) as { id: string }).id;
}

async function dbMeeting(id: string) {
  return testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id } });
}

describe("POST /webhooks/recall: recording ready", () => {
  it("copies Recall's media into storage once, however often and concurrently it is announced", async () => {
    const payload = randomBytes(300 * 1024);
    const media = await startMediaServer(payload);
    try {
      const sent = await meetingWithBot(fixture);
      recall.addRecording(sent.recallBotId, { downloadUrl: media.url });
      const at = new Date(Date.now() + 1000);
      const done = botStatusEvent({
        recallBotId: sent.recallBotId,
        metadata: sent.metadata,
        code: "done",
        at,
      });
      const deliveries = [
        // Svix retries (same message id), Recall re-sends (new ids), and the other shapes.
        ...Array.from({ length: 3 }, () => ({ body: done, msgId: "same" })),
        ...Array.from({ length: 3 }, () => ({ body: done, msgId: undefined })),
        {
          body: legacyStatusEvent({ recallBotId: sent.recallBotId, code: "done", at }),
          msgId: undefined,
        },
        {
          body: recordingDoneEvent({
            recallBotId: sent.recallBotId,
            recordingId: randomUUID(),
            at,
            metadata: sent.metadata,
          }),
          msgId: undefined,
        },
      ];
      const sameId = `msg_${uniqueSuffix()}`;
      const responses = await Promise.all(
        deliveries.map((delivery) =>
          postRecallEvent(
            server,
            secret,
            delivery.body,
            delivery.msgId === "same" ? sameId : undefined,
          ),
        ),
      );
      // Concurrent deliveries of one message: one applies, the others are duplicates (or,
      // having waited too long for the first, 409 and retried by Svix).
      for (const response of responses) expect([200, 409]).toContain(response.status);
      await webhookTasksSettled(testApp.ctx);

      expect(media.downloads()).toBe(1);
      const objects = await testApp.ctx.db.storageObject.findMany({
        where: { meetingId: sent.meetingId },
      });
      expect(objects).toHaveLength(1);
      expect(objects[0]).toMatchObject({
        source: "recall",
        contentType: "video/mp4",
        sizeBytes: BigInt(payload.length),
      });
      const imports = await testApp.ctx.db.recordingImport.findMany({
        where: { meetingId: sent.meetingId },
      });
      expect(imports).toHaveLength(1);
      expect(imports[0]).toMatchObject({ status: "done", externalId: sent.recallBotId });

      const usage = await getUsage(testApp.ctx.db, sent.caller.organizationId, new Date());
      expect(usage.storageBytes).toBe(BigInt(payload.length));
      const download = await request(server)
        .get(`/api/v1/meetings/${sent.meetingId}/recording`)
        .set(sent.caller.headers)
        .buffer(true)
        .parse((res, callback) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => callback(null, Buffer.concat(chunks)));
        });
      expect(download.status).toBe(200);
      expect((download.body as Buffer).equals(payload)).toBe(true);
      expect((await currentBot(sent)).status).toBe("done");
    } finally {
      await media.close();
    }
  });
});
