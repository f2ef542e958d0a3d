import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import request from "supertest";
import { authHeaderFor } from "../support/auth";
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
  postRecallEvent,
  recordingDoneEvent,
  startMediaServer,
  webhookTasksSettled,
} from "../support/recallEvents";
import { newSvixSecret } from "../support/webhookSigning";

/**
 * Recall's bot events as Recall delivers them (late, out of order, for meetings the customer
 * deleted), through the real route: the bot and its meeting must end the same whatever the order,
 * and a bot whose meeting is gone must not stay in the call.
 */

const secret = newSvixSecret();
let fixture: RecallTestApp;
let recall: FakeRecall;
let testApp: TestApp;
let server: Server;

beforeAll(async () => {
  fixture = await startRecallTestApp({
    env: { RECALL_WEBHOOK_SECRET: secret, RECALL_RETRY_BASE_MS: "10", RECALL_MAX_RETRIES: "1" },
  });
  ({ recall, testApp, server } = fixture);
});
afterAll(() => fixture.close());

async function deliver(
  sent: MeetingWithBot,
  code: string,
  at: Date,
  subCode: string | null = null,
) {
  const response = await postRecallEvent(
    server,
    secret,
    botStatusEvent({ recallBotId: sent.recallBotId, metadata: sent.metadata, code, subCode, at }),
  );
  expect(response.status).toBe(200);
}

async function shown(sent: MeetingWithBot) {
  const bot = await request(server)
    .get(`/api/v1/meetings/${sent.meetingId}/bot`)
    .set(sent.caller.headers);
  const meeting = await request(server)
    .get(`/api/v1/meetings/${sent.meetingId}`)
    .set(sent.caller.headers);
  return {
    bot: bot.body.status as string,
    reason: bot.body.terminalReason as string | null,
    meeting: meeting.body.status as string,
  };
}

describe("fatal and done, in either order", () => {
  it("end the bot and its meeting the same way whichever is delivered first", async () => {
    const t0 = Date.now() + 1000;
    const at = (s: number) => new Date(t0 + s * 1000);
    const outcomes = [];
    for (const order of [
      ["fatal", "done"],
      ["done", "fatal"],
    ] as const) {
      const sent = await meetingWithBot(fixture);
      await deliver(sent, "joining_call", at(1));
      for (const code of order) {
        // fatal happened first (the bot errored), done after it (the bot shut down)
        await deliver(
          sent,
          code,
          code === "fatal" ? at(5) : at(6),
          code === "fatal" ? "bot_errored" : null,
        );
      }
      outcomes.push(await shown(sent));
    }
    expect(outcomes[1]).toEqual(outcomes[0]);
    expect(outcomes[0]).toEqual({ bot: "fatal", reason: "fatal: bot_errored", meeting: "failed" });
  });
});

describe("a bot whose meeting was deleted", () => {
  it("is told to leave when it reports itself in the call, though it was still joining when the meeting was deleted", async () => {
    const sent = await meetingWithBot(fixture);
    recall.addStatusChange(sent.recallBotId, { code: "joining_call" });
    const deleted = await request(server)
      .delete(`/api/v1/meetings/${sent.meetingId}`)
      .set(sent.caller.headers);
    expect(deleted.status).toBe(204);
    await testApp.ctx.providerCalls.idle();
    const leaves = () =>
      recall.requestsTo("POST", `/api/v1/bot/${sent.recallBotId}/leave_call/`).length;
    // Refused (not in the call yet), not deletable (dispatched): the leave waits out a backoff.
    expect(leaves()).toBe(1);
    const leaveCall = () =>
      testApp.ctx.db.providerCall.findUniqueOrThrow({
        where: { kind_target: { kind: "recall.bot.leave", target: sent.botId } },
      });
    expect((await leaveCall()).status).toBe("pending");

    // Admitted: its webhook makes the leave due at once, without waiting for the backoff.
    const admittedAt = new Date();
    recall.addStatusChange(sent.recallBotId, {
      code: "in_call_recording",
      created_at: admittedAt.toISOString(),
    });
    await deliver(sent, "in_call_recording", admittedAt);
    await webhookTasksSettled(testApp.ctx);
    expect(leaves()).toBe(2);
    const call = await leaveCall();
    expect([call.status, call.attempts, call.reason, call.result]).toEqual([
      "done",
      2,
      "meeting_deleted",
      "left",
    ]);
    const row = await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: sent.botId } });
    expect(row.status).toBe("call_ended");
  });
});

describe("a recording whose copy gave up", () => {
  it("is copied when Recall announces it again (recording.done after the retries ran out)", async () => {
    const payload = randomBytes(40 * 1024);
    const media = await startMediaServer(payload);
    try {
      const sent = await meetingWithBot(fixture);
      // bot.done arrives before Recall can hand out the media: every attempt fails...
      await deliver(sent, "done", new Date(Date.now() + 1000));
      await webhookTasksSettled(testApp.ctx);
      const db = testApp.ctx.db;
      const queued = await db.recordingImport.findFirstOrThrow({
        where: { meetingId: sent.meetingId },
      });
      expect(queued.lastError).toMatch(/no downloadable recording/);
      // ...until the import gives up (its last retry, an hour and a half later).
      await db.recordingImport.update({
        where: { id: queued.id },
        data: { status: "failed", attempts: 6 },
      });

      // Recall finishes the media and says so.
      recall.addRecording(sent.recallBotId, { downloadUrl: media.url });
      const response = await postRecallEvent(
        server,
        secret,
        recordingDoneEvent({
          recallBotId: sent.recallBotId,
          recordingId: "rec_1",
          at: new Date(Date.now() + 2000),
          metadata: sent.metadata,
        }),
      );
      expect(response.status).toBe(200);
      await webhookTasksSettled(testApp.ctx);
      expect(media.downloads()).toBe(1);
      expect(
        await db.recordingImport.findUniqueOrThrow({ where: { id: queued.id } }),
      ).toMatchObject({ status: "done" });
      expect(await db.storageObject.count({ where: { meetingId: sent.meetingId } })).toBe(1);

      // A later announcement of a copied recording copies nothing again.
      await postRecallEvent(
        server,
        secret,
        recordingDoneEvent({
          recallBotId: sent.recallBotId,
          recordingId: "rec_1",
          at: new Date(Date.now() + 3000),
          metadata: sent.metadata,
        }),
      );
      await webhookTasksSettled(testApp.ctx);
      expect(media.downloads()).toBe(1);
    } finally {
      await media.close();
    }
  });
});

describe("a meeting deleted while its bot is being created", () => {
  it("sends the new bot home and leaves nothing active behind", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "Gone", meetingUrl: "https://meet.google.com/del-etes-oon" });
    recall.setLatency(400);
    try {
      const creating = request(server)
        .post(`/api/v1/meetings/${meeting.body.id}/bot`)
        .set(caller.headers)
        .then((response) => response);
      await new Promise((resolve) => setTimeout(resolve, 150));
      const deleted = await request(server)
        .delete(`/api/v1/meetings/${meeting.body.id}`)
        .set(caller.headers);
      expect(deleted.status).toBe(204);
      const created = await creating;
      expect([201, 404]).toContain(created.status);
    } finally {
      recall.setLatency(0);
    }
    const [made] = recall.createdBots().filter((b) => b.metadata.meetingId === meeting.body.id);
    expect(made).toBeDefined();
    expect(recall.requestsTo("POST", `/api/v1/bot/${made!.id}/leave_call/`)).toHaveLength(1);
    // Its end arrives by webhook: then nothing of the deleted meeting is active.
    await postRecallEvent(
      server,
      secret,
      botStatusEvent({
        recallBotId: made!.id,
        metadata: made!.metadata,
        code: "call_ended",
        at: new Date(Date.now() + 1000),
      }),
    );
    const bots = await testApp.ctx.db.bot.findMany({ where: { meetingId: meeting.body.id } });
    expect(bots.map((b) => b.status)).toEqual(["call_ended"]);
  });
});
