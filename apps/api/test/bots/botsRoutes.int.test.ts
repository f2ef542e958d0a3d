import type { Server } from "node:http";
import request from "supertest";
import { authHeaderFor } from "../support/auth";
import type { FakeRecall } from "../support/fakes/recallServer";
import type { TestApp } from "../support/helpers";
import { startRecallTestApp, type RecallTestApp } from "../support/recallApp";
import { botStatusEvent, postRecallEvent } from "../support/recallEvents";
import { newSvixSecret } from "../support/webhookSigning";
import { TERMINAL_BOT_STATUSES } from "../../src/bots";

const recallSecret = newSvixSecret();
let fixture: RecallTestApp;
let recall: FakeRecall;
let testApp: TestApp;
let server: Server;

function zoomUrl(): string {
  return `https://zoom.us/j/${`${Date.now()}${Math.floor(Math.random() * 1e6)}`.slice(-11)}`;
}

beforeAll(async () => {
  fixture = await startRecallTestApp({
    env: {
      RECALL_WEBHOOK_SECRET: recallSecret,
      // Long enough that a loaded machine never times out a create that Recall did answer.
      RECALL_TIMEOUT_MS: "2000",
      RECALL_MAX_RETRIES: "2",
      RECALL_RETRY_BASE_MS: "10",
      RECALL_RETRY_MAX_MS: "2000",
    },
  });
  ({ recall, testApp, server } = fixture);
});
beforeEach(() => recall.reset());
afterAll(() => fixture.close());

async function newMeeting(headers: { Authorization: string }, meetingUrl = zoomUrl()) {
  const response = await request(server)
    .post("/api/v1/meetings")
    .set(headers)
    .send({ title: "Weekly sync", meetingUrl });
  expect(response.status).toBe(201);
  return response.body as { id: string; meetingUrl: string };
}

async function activeBots(meetingId: string): Promise<number> {
  return testApp.ctx.db.bot.count({
    where: {
      meetingId,
      status: {
        notIn: [...TERMINAL_BOT_STATUSES],
      },
    },
  });
}

describe("POST /api/v1/meetings/:id/bot", () => {
  it("creates exactly one bot out of 50 concurrent requests; the others get 409", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    recall.setLatency(50);
    const responses = await Promise.all(
      Array.from({ length: 50 }, () =>
        request(server).post(`/api/v1/meetings/${meeting.id}/bot`).set(caller.headers).send({}),
      ),
    );
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(1);
    expect(statuses.filter((status) => status === 409)).toHaveLength(49);
    expect(recall.createdBots()).toHaveLength(1);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(1);
    const created = responses.find((response) => response.status === 201)!.body as {
      id: string;
      meetingId: string;
      status: string;
    };
    expect(created).toMatchObject({ meetingId: meeting.id, status: "ready" });
    expect(created).not.toHaveProperty("recallBotId");
    const conflict = responses.find((response) => response.status === 409)!.body as {
      error: { code: string };
    };
    expect(conflict.error.code).toBe("BOT_ALREADY_ACTIVE");
    expect(await activeBots(meeting.id)).toBe(1);
    // The bot carries our ids back to us in every webhook.
    expect(recall.createdBots()[0]!.metadata).toEqual({
      meetingId: meeting.id,
      organizationId: caller.organizationId,
      botId: created.id,
    });
  });

  it("refuses a second meeting whose link differs only in ways normalization removes", async () => {
    const caller = await authHeaderFor(testApp);
    const id = `${Date.now()}`.slice(-11);
    const first = await newMeeting(caller.headers, `https://us02web.zoom.us/j/${id}?pwd=abc`);
    const second = await newMeeting(
      caller.headers,
      `HTTPS://ACME.ZOOM.US/J/${id}/?utm_source=mail#success`,
    );
    expect(
      (await request(server).post(`/api/v1/meetings/${first.id}/bot`).set(caller.headers)).status,
    ).toBe(201);
    const refused = await request(server)
      .post(`/api/v1/meetings/${second.id}/bot`)
      .set(caller.headers);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: "BOT_ALREADY_ACTIVE_FOR_URL",
      details: { conflictingMeetingId: first.id },
    });
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("allows a new bot once Recall reports the first one ended (webhook)", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    const first = await request(server).post(url).set(caller.headers).send({ botName: "Notes" });
    expect(first.status).toBe(201);
    expect(first.body.botName).toBe("Notes");
    expect((await request(server).post(url).set(caller.headers)).status).toBe(409);

    const recallBot = recall.createdBots()[0]!;
    const ended = await postRecallEvent(
      server,
      recallSecret,
      botStatusEvent({
        recallBotId: recallBot.id,
        code: "call_ended",
        subCode: "call_ended_by_host",
        at: new Date(Date.now() + 1000),
        metadata: recallBot.metadata,
      }),
    );
    expect(ended.status).toBe(200);
    const current = await request(server).get(url).set(caller.headers);
    expect(current.body).toMatchObject({
      status: "call_ended",
      subCode: "call_ended_by_host",
      terminalReason: "call_ended: call_ended_by_host",
    });
    const meetingNow = await request(server)
      .get(`/api/v1/meetings/${meeting.id}`)
      .set(caller.headers);
    expect(meetingNow.body.status).toBe("processing");

    const second = await request(server).post(url).set(caller.headers);
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(recall.createdBots()).toHaveLength(2);
  });

  it("answers 502 when Recall fails with 500, and leaves no active bot", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    recall.failNext({ status: 500 }, { method: "POST", path: /^\/api\/v1\/bot\/$/ });
    const response = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers);
    expect(response.status).toBe(502);
    expect(response.body.error.code).toBe("RECALL_UNAVAILABLE");
    expect(await activeBots(meeting.id)).toBe(0);
    const bot = await request(server).get(`/api/v1/meetings/${meeting.id}/bot`).set(caller.headers);
    expect(bot.body).toMatchObject({ status: "failed" });
    expect(bot.body.terminalReason).toMatch(/^recall_create_failed: RECALL_UNAVAILABLE/);
  });

  it("answers 502 when Recall never answers, and leaves no active bot", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    recall.failNext({ hang: true }, { times: 3, method: "POST", path: /^\/api\/v1\/bot\/$/ });
    const response = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers);
    expect(response.status).toBe(502);
    expect(response.body.error.message).toMatch(/no answer within 2000 ms/);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(3);
    expect(await activeBots(meeting.id)).toBe(0);
    // The slot is free again: the next attempt succeeds.
    expect(
      (await request(server).post(`/api/v1/meetings/${meeting.id}/bot`).set(caller.headers)).status,
    ).toBe(201);
  });

  it("retries Recall's 429 after Retry-After and creates the bot once", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    recall.failNext(
      { status: 429, retryAfter: "1" },
      { times: 1, method: "POST", path: /^\/api\/v1\/bot\/$/ },
    );
    const response = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers);
    expect(response.status).toBe(201);
    const attempts = recall.requestsTo("POST", "/api/v1/bot/");
    expect(attempts).toHaveLength(2);
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(1000);
    expect(attempts[0]!.headers["idempotency-key"]).toBe(response.body.id);
    expect(attempts[1]!.headers["idempotency-key"]).toBe(response.body.id);
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("returns 404 for a meeting of another organization, and Recall is never called", async () => {
    const owner = await authHeaderFor(testApp);
    const other = await authHeaderFor(testApp);
    const meeting = await newMeeting(owner.headers);
    const response = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(other.headers);
    expect(response.status).toBe(404);
    expect(recall.requests).toHaveLength(0);
  });
});

describe("GET and DELETE /api/v1/meetings/:id/bot", () => {
  it("shows the bot, asks it to leave, and 404s when there is no active bot", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    expect((await request(server).get(url).set(caller.headers)).body.error.code).toBe(
      "BOT_NOT_FOUND",
    );
    const created = await request(server).post(url).set(caller.headers);
    expect((await request(server).get(url).set(caller.headers)).body.id).toBe(created.body.id);

    const removed = await request(server).delete(url).set(caller.headers);
    // The fake reports call_ended in the leave answer, which the service applies at once.
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ id: created.body.id, status: "call_ended" });
    const recallId = recall.createdBots()[0]!.id;
    expect(recall.requestsTo("POST", `/api/v1/bot/${recallId}/leave_call/`)).toHaveLength(1);
    const again = await request(server).delete(url).set(caller.headers);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("BOT_NOT_ACTIVE");
  });

  it("answers 404 BOT_NOT_ACTIVE (a declared code) to DELETE on a meeting that never had a bot", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const removed = await request(server)
      .delete(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers);
    expect(removed.status).toBe(404);
    expect(removed.body.error.code).toBe("BOT_NOT_ACTIVE");
    expect(recall.requests).toHaveLength(0);
  });

  it("reaches Recall on a second DELETE after Recall refused the first leave", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    const created = await request(server).post(url).set(caller.headers);
    // Recall's own refusal (the bot is not in the call yet), which its idempotency cache keeps.
    const recallId = recall.createdBots()[0]!.id;
    recall.addStatusChange(recallId, { code: "in_waiting_room" });
    const first = await request(server).delete(url).set(caller.headers);
    expect(first.status).toBe(409);
    expect(first.body.error.code).toBe("BOT_NOT_IN_CALL_YET");
    // Admitted: the second DELETE reaches Recall (a key of its own) and the bot leaves.
    recall.addStatusChange(recallId, { code: "in_call_recording" });
    const second = await request(server).delete(url).set(caller.headers);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ id: created.body.id, status: "call_ended" });
    expect(recall.requestsTo("POST", `/api/v1/bot/${recallId}/leave_call/`)).toHaveLength(2);
  });

  it("answers 202 while Recall has not confirmed the bot left", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    await request(server).post(url).set(caller.headers);
    // Recall accepts the leave, but its bot read still shows the bot in the call.
    recall.failNext({ status: 404 }, { method: "GET" });
    const removed = await request(server).delete(url).set(caller.headers);
    expect(removed.status).toBe(202);
    expect(removed.body.status).toBe("ready");
  });
});

describe("DELETE /api/v1/meetings/:id/bot when Recall refuses the leave", () => {
  /** A meeting with a bot sent through the API: the URL of its bot, and the bot's Recall id. */
  async function meetingWithBot() {
    const caller = await authHeaderFor(testApp);
    const meeting = await newMeeting(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    const created = await request(server).post(url).set(caller.headers);
    expect(created.status).toBe(201);
    const recallId = recall.createdBots().at(-1)!.id;
    return { caller, meeting, url, botId: created.body.id as string, recallId };
  }

  const leaves = (recallId: string) =>
    recall.requestsTo("POST", `/api/v1/bot/${recallId}/leave_call/`).length;

  it("answers 409 BOT_NOT_IN_CALL_YET, not success, while the bot waits to be admitted (it would record)", async () => {
    const { caller, meeting, url, botId, recallId } = await meetingWithBot();
    recall.addStatusChange(recallId, { code: "joining_call" });
    recall.addStatusChange(recallId, { code: "in_waiting_room" });

    const removed = await request(server).delete(url).set(caller.headers);
    expect(removed.status).toBe(409);
    expect(removed.body.error).toMatchObject({
      code: "BOT_NOT_IN_CALL_YET",
      details: { meetingId: meeting.id, botStatus: "in_waiting_room" },
    });
    // Refused, read back, and not deletable: Recall had dispatched it (405).
    expect(leaves(recallId)).toBe(1);
    expect(recall.requestsTo("DELETE", `/api/v1/bot/${recallId}/`)).toHaveLength(1);
    expect(recall.bots.get(recallId)!.status_changes.at(-1)!.code).toBe("in_waiting_room");
    // The bot is still active, shown as Recall reports it, and still blocks a second bot.
    const shown = await request(server).get(url).set(caller.headers);
    expect(shown.body).toMatchObject({ id: botId, status: "in_waiting_room" });
    expect(await activeBots(meeting.id)).toBe(1);
  });

  it("does not keep the 409 under an Idempotency-Key: the retry with the same key, once the bot is in, makes it leave", async () => {
    const { caller, url, botId, recallId } = await meetingWithBot();
    recall.addStatusChange(recallId, { code: "in_waiting_room" });
    const keyed = { ...caller.headers, "Idempotency-Key": `leave-${botId}` };

    const refused = await request(server).delete(url).set(keyed);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("BOT_NOT_IN_CALL_YET");
    // "Retry shortly", with the same key as a careful client (the typed client) retries: once the
    // bot is admitted, the retry runs for real instead of getting the refusal again for 24 hours.
    recall.addStatusChange(recallId, { code: "in_call_recording" });
    const retried = await request(server).delete(url).set(keyed);
    expect(retried.headers["idempotent-replayed"]).toBeUndefined();
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id: botId, status: "call_ended" });
    expect(leaves(recallId)).toBe(2);
    // That answer is kept: a third send replays it, and Recall is not asked again.
    const replayed = await request(server).delete(url).set(keyed);
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    expect(replayed.status).toBe(200);
    expect(leaves(recallId)).toBe(2);
  });

  it("deletes a scheduled bot that Recall has not dispatched yet: it never joins, and the meeting can get another", async () => {
    const { caller, meeting, url, botId, recallId } = await meetingWithBot();
    recall.updateBot(recallId, (bot) => {
      bot.join_at = new Date(Date.now() + 60 * 60 * 1000).toISOString();
    });

    const removed = await request(server).delete(url).set(caller.headers);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({
      id: botId,
      status: "failed",
      terminalReason: "deleted at Recall before it joined the call",
    });
    expect(recall.bots.has(recallId)).toBe(false);
    const shown = await request(server).get(`/api/v1/meetings/${meeting.id}`).set(caller.headers);
    expect(shown.body.status).toBe("scheduled");
    expect((await request(server).post(url).set(caller.headers)).status).toBe(201);
  });

  it("shows a bot that had already left as ended (its webhook was lost)", async () => {
    const { caller, url, botId, recallId } = await meetingWithBot();
    recall.addStatusChange(recallId, { code: "in_call_recording" });
    recall.addStatusChange(recallId, { code: "call_ended", sub_code: "call_ended_by_host" });

    const removed = await request(server).delete(url).set(caller.headers);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ id: botId, status: "call_ended" });
    expect(leaves(recallId)).toBe(1);
    expect(recall.requestsTo("DELETE", `/api/v1/bot/${recallId}/`)).toHaveLength(0);
  });

  it("asks again when the bot was admitted between the refusal and the read", async () => {
    const { caller, url, botId, recallId } = await meetingWithBot();
    recall.addStatusChange(recallId, { code: "in_call_recording" });
    // The refusal Recall gave while the bot was still in the waiting room.
    recall.failNext(
      { status: 400, body: { detail: "Bot is not in the call yet." }, fromEndpoint: true },
      { path: /\/leave_call\/$/ },
    );

    const removed = await request(server).delete(url).set(caller.headers);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ id: botId, status: "call_ended" });
    expect(leaves(recallId)).toBe(2);
  });
});
