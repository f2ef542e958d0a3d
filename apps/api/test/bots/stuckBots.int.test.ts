import { createBot, createMeeting, createOrganization } from "@zigznote/database/testing";
import type { BotStatus } from "@zigznote/database";
import { cleanupOrphanedBots } from "../../src/bots";
import { applyBotStatus } from "../../src/bots";
import type { RecallClient } from "../../src/bots";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, type TestApp } from "../support/helpers";
import { fakeRecallClient, fakeRecallEnv } from "../support/recallApp";
import { startMediaServer } from "../support/recallEvents";
import { createRecallMediaResolver } from "../../src/bots";
import { processRecordingImport } from "../../src/recordings";

/**
 * Bots here live in 2020 so that the job, which looks at every stuck bot in the database, never
 * touches the bots of other suites running at the same time (they live in the present).
 */
const T0 = new Date("2020-03-01T10:00:00Z");
const HOUR = 60 * 60 * 1000;
const at = (ms: number) => new Date(T0.getTime() + ms);

describe("cleanupOrphanedBots", () => {
  let testApp: TestApp;
  let recall: FakeRecall;
  let client: RecallClient;

  beforeAll(async () => {
    recall = await startFakeRecall();
    // The app's Recall is the fake too: the leaves the job queues are made with it.
    testApp = createTestApp({
      env: {
        ...fakeRecallEnv(recall),
        RECALL_MAX_RETRIES: "0",
        STUCK_BOT_AFTER_MINUTES: "120",
        JOB_CONCURRENCY: "4",
      },
    });
    client = fakeRecallClient(recall, {
      timeoutMs: 5_000,
      maxRetries: 1,
      retryBaseMs: 5,
      retryMaxMs: 100,
    });
  });
  afterAll(async () => {
    await testApp.close();
    await recall.close();
  });

  /** A bot known to Recall whose status history is `changes`, and our row showing `status` at `since`. */
  async function botWith(
    status: BotStatus,
    since: Date,
    changes: { code: string; at: Date; sub_code?: string }[],
  ) {
    const db = testApp.ctx.db;
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    const remote = await client.createBot({
      meetingUrl: meeting.meetingUrl,
      botName: "zigznote",
      metadata: { meetingId: meeting.id, organizationId: org.id },
      idempotencyKey: meeting.id,
    });
    recall.updateBot(remote.id, (bot) => {
      bot.status_changes = changes.map((change) => ({
        code: change.code,
        sub_code: change.sub_code ?? null,
        message: null,
        created_at: change.at.toISOString(),
      }));
    });
    const bot = await createBot(db, meeting, {
      recallBotId: remote.id,
      status,
      lastStatusAt: since,
    });
    return { meeting, bot, recallBotId: remote.id };
  }

  const leaveCalls = (recallBotId: string) =>
    recall.requestsTo("POST", `/api/v1/bot/${recallBotId}/leave_call/`).length;

  /** The job, then the leaves it queued (made after its commits). */
  async function runStuckJob(now: Date, app: TestApp = testApp) {
    const result = await cleanupOrphanedBots(
      { ...app.ctx.modules.bots.deps.stuckBots, recall: client },
      { now },
    );
    await app.ctx.providerCalls.idle();
    return result;
  }

  const deletes = (recallBotId: string) =>
    recall.requestsTo("DELETE", `/api/v1/bot/${recallBotId}/`).length;

  const leaveCallOf = (botId: string) =>
    testApp.ctx.db.providerCall.findUnique({
      where: { kind_target: { kind: "recall.bot.leave", target: botId } },
    });

  /** The retry job's pass once the call's backoff is over (its due time moved to the past). */
  async function retryLeaveNow(botId: string) {
    await testApp.ctx.db.providerCall.update({
      where: { kind_target: { kind: "recall.bot.leave", target: botId } },
      data: { nextAttemptAt: new Date(0) },
    });
    await testApp.ctx.providerCalls.processDue({ batchSize: 50, concurrency: 1 });
    await testApp.ctx.providerCalls.idle();
  }

  it("does not take a stuck bot still in the waiting room for left: it stays active, its leave is retried, and once admitted it leaves", async () => {
    const { bot, meeting, recallBotId } = await botWith("in_waiting_room", T0, [
      { code: "joining_call", at: T0 },
      { code: "in_waiting_room", at: T0 },
    ]);
    const meetingBefore = meeting.status;
    const result = await runStuckJob(at(2 * HOUR + 60_000));
    const db = testApp.ctx.db;
    let row = await db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect([row.status, row.endedAt]).toEqual(["in_waiting_room", null]);
    expect(result.summary.leaveQueued).toBeGreaterThanOrEqual(1);
    // Refused (not in the call yet), read back, not deletable (dispatched): still active.
    expect(leaveCalls(recallBotId)).toBe(1);
    expect(deletes(recallBotId)).toBe(1);
    // Not given up on (the old job showed it failed while it could still be admitted).
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      meetingBefore,
    );
    let call = await leaveCallOf(bot.id);
    expect([call?.status, call?.attempts, call?.reason]).toEqual(["pending", 1, "stuck_bot"]);
    expect(call?.lastError).toMatch(/not in the call yet \(Recall shows in_waiting_room\)/);

    // The next run finds it again: the leave is already queued, nothing more is sent.
    const again = await runStuckJob(at(2 * HOUR + 6 * 60_000));
    expect(again.summary.leavePending).toBeGreaterThanOrEqual(1);
    expect(leaveCalls(recallBotId)).toBe(1);

    // The host admits it: the retry makes it leave, and its end is recorded from Recall.
    recall.addStatusChange(recallBotId, { code: "in_call_recording" });
    await retryLeaveNow(bot.id);
    expect(leaveCalls(recallBotId)).toBe(2);
    expect(recall.bots.get(recallBotId)!.status_changes.at(-1)!.code).toBe("call_ended");
    call = await leaveCallOf(bot.id);
    expect([call?.status, call?.attempts, call?.result]).toEqual(["done", 2, "left"]);
    row = await db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect(row.status).toBe("call_ended");
  });

  it("deletes a stuck bot that Recall has scheduled and not dispatched yet (it never joins)", async () => {
    const { bot, recallBotId } = await botWith("ready", at(4 * HOUR), [
      { code: "ready", at: at(4 * HOUR) },
    ]);
    recall.updateBot(recallBotId, (remote) => {
      remote.join_at = new Date(Date.now() + HOUR).toISOString();
    });
    await runStuckJob(at(6 * HOUR + 60_000));
    expect(recall.bots.has(recallBotId)).toBe(false);
    const call = await leaveCallOf(bot.id);
    expect([call?.status, call?.attempts, call?.result]).toEqual(["done", 1, "deleted"]);
    const row = await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect([row.status, row.terminalReason]).toEqual([
      "failed",
      "deleted at Recall before it joined the call",
    ]);
  });

  it("makes a stuck bot in the call (not recording) leave, and records its end from Recall", async () => {
    const { bot, recallBotId } = await botWith("in_call_not_recording", at(6 * HOUR), [
      { code: "in_call_not_recording", at: at(6 * HOUR) },
    ]);
    await runStuckJob(at(8 * HOUR + 60_000));
    expect(leaveCalls(recallBotId)).toBe(1);
    const call = await leaveCallOf(bot.id);
    expect([call?.status, call?.attempts, call?.result]).toEqual(["done", 1, "left"]);
    expect((await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "call_ended",
    );
  });

  it("records a stuck bot that Recall shows ended as ended, with no leave asked or queued", async () => {
    const { bot, recallBotId } = await botWith("in_waiting_room", at(8 * HOUR), [
      { code: "in_waiting_room", at: at(8 * HOUR) },
      { code: "call_ended", at: at(8 * HOUR + 60_000), sub_code: "timeout_exceeded_waiting_room" },
    ]);
    await runStuckJob(at(10 * HOUR + 60_000));
    expect((await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "call_ended",
    );
    expect(leaveCalls(recallBotId)).toBe(0);
    expect(deletes(recallBotId)).toBe(0);
    expect(await leaveCallOf(bot.id)).toBeNull();
  });

  it("ends a stuck bot Recall no longer has (404), with no leave asked or queued", async () => {
    const { bot, meeting, recallBotId } = await botWith("joining_call", at(12 * HOUR), [
      { code: "joining_call", at: at(12 * HOUR) },
    ]);
    recall.bots.delete(recallBotId);
    const result = await runStuckJob(at(14 * HOUR + 60_000));
    expect(result.summary.timedOut).toBeGreaterThanOrEqual(1);
    const ended = await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect(ended.status).toBe("call_ended");
    expect(ended.terminalReason).toMatch(/^timeout: no status change for 120 minutes/);
    expect(
      (await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status,
    ).toBe("failed");
    expect(leaveCalls(recallBotId)).toBe(0);
    expect(await leaveCallOf(bot.id)).toBeNull();
  });

  it("queues one leave when two instances run the job at once", async () => {
    const second = createTestApp({
      env: { ...fakeRecallEnv(recall), RECALL_MAX_RETRIES: "0", STUCK_BOT_AFTER_MINUTES: "120" },
    });
    try {
      const { bot, recallBotId } = await botWith("in_call_not_recording", at(16 * HOUR), [
        { code: "in_call_not_recording", at: at(16 * HOUR) },
      ]);
      const now = at(18 * HOUR + 60_000);
      await Promise.all([runStuckJob(now), runStuckJob(now, second)]);
      expect(leaveCalls(recallBotId)).toBe(1);
      const call = await leaveCallOf(bot.id);
      expect([call?.status, call?.attempts, call?.result]).toEqual(["done", 1, "left"]);
    } finally {
      await second.close();
    }
  });

  it("measures from the bot's own last status: a bot stuck 1h59 is left alone and Recall is not asked", async () => {
    const { bot, recallBotId } = await botWith("in_waiting_room", at(10 * HOUR), [
      { code: "in_waiting_room", at: at(10 * HOUR) },
    ]);
    const before = recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`).length;
    await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(11 * HOUR + 59 * 60_000) },
    );
    expect((await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "in_waiting_room",
    );
    expect(recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`).length).toBe(before);
  });

  it("does not kill a bot recording a long meeting that Recall reports as still recording", async () => {
    const { bot, recallBotId } = await botWith("in_call_recording", at(20 * HOUR), [
      { code: "joining_call", at: at(20 * HOUR - 60_000) },
      { code: "in_call_recording", at: at(20 * HOUR) },
    ]);
    const result = await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(25 * HOUR) },
    );
    expect(result.summary.stillRecording).toBeGreaterThanOrEqual(1);
    expect((await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "in_call_recording",
    );
    expect(leaveCalls(recallBotId)).toBe(0);
  });

  it("applies what Recall moved on to when the webhook was lost", async () => {
    const { bot, recallBotId } = await botWith("in_call_recording", at(30 * HOUR), [
      { code: "in_call_recording", at: at(30 * HOUR) },
      { code: "call_ended", at: at(31 * HOUR) },
      { code: "done", at: at(31 * HOUR + 120_000) },
    ]);
    const result = await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(33 * HOUR) },
    );
    expect(result.summary.synced).toBeGreaterThanOrEqual(1);
    const synced = await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect(synced.status).toBe("done");
    expect(synced.terminalReason).not.toMatch(/timeout/);
    expect(leaveCalls(recallBotId)).toBe(0);
  });

  it("releases a reservation that never got a Recall bot", async () => {
    const db = testApp.ctx.db;
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    const bot = await createBot(db, meeting, {
      recallBotId: null,
      status: "pending",
      lastStatusAt: at(40 * HOUR),
    });
    await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(43 * HOUR) },
    );
    const released = await db.bot.findUniqueOrThrow({ where: { id: bot.id } });
    expect(released.status).toBe("failed");
    expect(released.terminalReason).toMatch(/reservation never got a Recall bot/);
  });

  it("lets a status webhook that lands between selection and update win", async () => {
    const { bot, recallBotId } = await botWith("in_waiting_room", at(50 * HOUR), [
      { code: "in_waiting_room", at: at(50 * HOUR) },
    ]);
    const asked = () => recall.requestsTo("GET", `/api/v1/bot/${recallBotId}/`).length;
    const before = asked();
    recall.setLatency(2_000); // Recall is slow to answer the job's GET...
    try {
      const job = cleanupOrphanedBots(
        { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
        { now: at(53 * HOUR) },
      );
      // The job has selected the bot once it asks Recall about it (a fixed pause raced the
      // job's first query on a loaded machine: the webhook then landed before the selection).
      const deadline = Date.now() + 10_000;
      while (asked() === before) {
        if (Date.now() > deadline) throw new Error("the job never asked Recall about the bot");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // ...and meanwhile the admitted bot's webhook arrives.
      const webhook = await applyBotStatus(
        { db: testApp.ctx.db },
        {
          recallBotId,
          status: "in_call_recording",
          at: at(52 * HOUR),
          source: "webhook",
        },
      );
      expect(webhook.applied).toBe(true);
      const result = await job;
      expect(result.summary.changedMeanwhile).toBeGreaterThanOrEqual(1);
    } finally {
      recall.setLatency(0);
    }
    expect((await testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "in_call_recording",
    );
    expect(leaveCalls(recallBotId)).toBe(0);
  });

  /** The meeting's queued copy of the Recall recording, run now with the fake Recall. */
  async function copyQueuedRecording(meetingId: string, now: Date) {
    const queued = await testApp.ctx.db.recordingImport.findMany({ where: { meetingId } });
    expect(queued).toHaveLength(1);
    const outcome = await processRecordingImport(
      {
        ...testApp.ctx.modules.recordings.deps.imports,
        resolveMedia: createRecallMediaResolver(client),
        now: () => now,
      },
      { importId: queued[0]!.id },
    );
    return { outcome, queued: queued[0]! };
  }

  it("queues the copy of the recording when it syncs a bot whose done webhook was lost", async () => {
    const media = await startMediaServer(Buffer.alloc(64 * 1024, 7));
    try {
      const { bot, meeting, recallBotId } = await botWith("in_call_recording", at(60 * HOUR), [
        { code: "in_call_recording", at: at(60 * HOUR) },
        { code: "call_ended", at: at(61 * HOUR) },
        { code: "done", at: at(61 * HOUR + 120_000) },
      ]);
      recall.addRecording(recallBotId, { downloadUrl: media.url });
      await cleanupOrphanedBots(
        { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
        { now: at(63 * HOUR) },
      );
      const db = testApp.ctx.db;
      expect((await db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe("done");
      expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
        "completed",
      );
      const { outcome, queued } = await copyQueuedRecording(meeting.id, at(63 * HOUR));
      expect(queued).toMatchObject({ externalId: recallBotId, botId: bot.id });
      expect(outcome).toBe("done");
      expect(await db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(1);
    } finally {
      await media.close();
    }
  });

  it("applies every status Recall reports since the last one, so the meeting follows its bot", async () => {
    const { bot, meeting } = await botWith("in_call_recording", at(70 * HOUR), [
      { code: "in_call_recording", at: at(70 * HOUR) },
      { code: "call_ended", at: at(71 * HOUR) },
      { code: "done", at: at(71 * HOUR + 60_000) },
      { code: "media_expired", at: at(72 * HOUR) },
    ]);
    await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(73 * HOUR) },
    );
    const db = testApp.ctx.db;
    expect((await db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe(
      "media_expired",
    );
    // Not "recording" forever: the call ended and the bot finished.
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "completed",
    );
  });

  it("reads back a bot left at call_ended whose done webhook was lost, and copies its recording", async () => {
    const media = await startMediaServer(Buffer.alloc(32 * 1024, 3));
    try {
      const { bot, meeting, recallBotId } = await botWith("call_ended", at(80 * HOUR), [
        { code: "in_call_recording", at: at(79 * HOUR) },
        { code: "call_ended", at: at(80 * HOUR) },
        { code: "done", at: at(80 * HOUR + 300_000) },
      ]);
      await testApp.ctx.db.meeting.update({
        where: { id: meeting.id },
        data: { status: "processing" },
      });
      recall.addRecording(recallBotId, { downloadUrl: media.url });
      await cleanupOrphanedBots(
        { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
        { now: at(83 * HOUR) },
      );
      const db = testApp.ctx.db;
      expect((await db.bot.findUniqueOrThrow({ where: { id: bot.id } })).status).toBe("done");
      expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
        "completed",
      );
      expect((await copyQueuedRecording(meeting.id, at(83 * HOUR))).outcome).toBe("done");
      expect(leaveCalls(recallBotId)).toBe(0);
    } finally {
      await media.close();
    }
  });

  it("releases a reservation its creating process left behind minutes ago, not hours (the meeting could get no bot meanwhile)", async () => {
    const db = testApp.ctx.db;
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, { organizationId: org.id });
    // The instance that reserved it died before Recall answered: nothing will record an id.
    const orphan = await createBot(db, meeting, {
      recallBotId: null,
      status: "pending",
      lastStatusAt: at(90 * HOUR),
    });
    const fresh = await createBot(db, await createMeeting(db, { organizationId: org.id }), {
      recallBotId: null,
      status: "pending",
      lastStatusAt: at(90 * HOUR + 9 * 60_000),
    });
    const result = await cleanupOrphanedBots(
      { ...testApp.ctx.modules.bots.deps.stuckBots, recall: client },
      { now: at(90 * HOUR + 10 * 60_000) },
    );
    expect(result.summary.releasedReservations).toBeGreaterThanOrEqual(1);
    const released = await db.bot.findUniqueOrThrow({ where: { id: orphan.id } });
    expect(released.status).toBe("failed");
    expect(released.terminalReason).toMatch(/reservation never got a Recall bot/);
    // One still within the time a creation can take (Recall's timeouts and retries) is left alone.
    expect((await db.bot.findUniqueOrThrow({ where: { id: fresh.id } })).status).toBe("pending");
  });
});
