import type { Server } from "node:http";
import request from "supertest";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import type { FakeRecall } from "../support/fakes/recallServer";
import type { TestApp } from "../support/helpers";
import { startRecallTestApp, type RecallTestApp } from "../support/recallApp";

let fixture: RecallTestApp;
let recall: FakeRecall;
let testApp: TestApp;
let server: Server;

beforeAll(async () => {
  fixture = await startRecallTestApp();
  ({ recall, testApp, server } = fixture);
});
afterAll(() => fixture.close());

let counter = 0;
function zoomUrl(): string {
  counter += 1;
  return `https://zoom.us/j/${`${Date.now()}`.slice(-8)}${String(counter).padStart(3, "0")}`;
}

describe("/api/v1/meetings", () => {
  it("creates, reads, updates, lists and soft-deletes a meeting", async () => {
    const caller = await authHeaderFor(testApp, { role: "member" });
    const created = await request(server).post("/api/v1/meetings").set(caller.headers).send({
      title: "  Kick-off ",
      meetingUrl: "https://us02web.zoom.us/j/85012345678?pwd=abc",
      startTime: "2026-11-30T15:00:00Z",
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(String),
      title: "Kick-off",
      meetingUrl: "https://us02web.zoom.us/j/85012345678?pwd=abc",
      platform: "zoom",
      status: "scheduled",
      startTime: "2026-11-30T15:00:00.000Z",
      endTime: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    const url = `/api/v1/meetings/${created.body.id}`;
    expect((await request(server).get(url).set(caller.headers)).body.title).toBe("Kick-off");

    const updated = await request(server)
      .patch(url)
      .set(caller.headers)
      .send({ title: "Kick-off (moved)", endTime: "2026-11-30T16:00:00Z" });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({
      title: "Kick-off (moved)",
      endTime: "2026-11-30T16:00:00.000Z",
    });
    const backwards = await request(server)
      .patch(url)
      .set(caller.headers)
      .send({ endTime: "2026-11-30T14:00:00Z" });
    expect(backwards.status).toBe(400);

    expect((await request(server).delete(url).set(caller.headers)).status).toBe(204);
    expect((await request(server).get(url).set(caller.headers)).status).toBe(404);
    expect((await request(server).delete(url).set(caller.headers)).status).toBe(404);
    const list = await request(server).get("/api/v1/meetings").set(caller.headers);
    expect(list.body.data.map((m: { id: string }) => m.id)).not.toContain(created.body.id);
  });

  it("rejects unsupported links and unknown fields with field details", async () => {
    const caller = await authHeaderFor(testApp);
    const badLink = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "x", meetingUrl: "https://example.com/call/1" });
    expect(badLink.status).toBe(400);
    expect(badLink.body.error.code).toBe("VALIDATION_ERROR");
    const extra = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "x", meetingUrl: zoomUrl(), organizationId: caller.organizationId });
    expect(extra.status).toBe(400);
  });

  it("pages with a cursor, newest first, and filters by status", async () => {
    const caller = await authHeaderFor(testApp);
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await request(server)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .send({ title: `m${i}`, meetingUrl: zoomUrl() });
      ids.push(response.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(server)
        .get("/api/v1/meetings")
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(caller.headers);
      expect(page.status).toBe(200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((m: { id: string }) => m.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());

    await request(server).post(`/api/v1/meetings/${ids[0]}/bot`).set(caller.headers);
    const joining = await request(server)
      .get("/api/v1/meetings")
      .query({ status: "joining" })
      .set(caller.headers);
    expect(joining.body.data.map((m: { id: string }) => m.id)).toEqual([ids[0]]);
    expect(
      (await request(server).get("/api/v1/meetings").query({ cursor: "nope" }).set(caller.headers))
        .status,
    ).toBe(400);
  });

  it("asks the active bot to leave when its meeting is deleted", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "Ends early", meetingUrl: zoomUrl() });
    await request(server).post(`/api/v1/meetings/${meeting.body.id}/bot`).set(caller.headers);
    const recallBot = recall.createdBots().find((b) => b.metadata.meetingId === meeting.body.id)!;
    expect(
      (await request(server).delete(`/api/v1/meetings/${meeting.body.id}`).set(caller.headers))
        .status,
    ).toBe(204);
    await testApp.ctx.providerCalls.idle();
    expect(recall.requestsTo("POST", `/api/v1/bot/${recallBot.id}/leave_call/`)).toHaveLength(1);
  });

  /** A meeting with a bot (through the API) whose Recall bot then reports `codes`. */
  async function deletedMeetingWithBot(codes: string[]) {
    const caller = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "Deleted", meetingUrl: zoomUrl() });
    const bot = await request(server)
      .post(`/api/v1/meetings/${meeting.body.id}/bot`)
      .set(caller.headers);
    expect(bot.status).toBe(201);
    const recallBot = recall.createdBots().find((b) => b.metadata.meetingId === meeting.body.id)!;
    for (const code of codes) recall.addStatusChange(recallBot.id, { code });
    const deleted = await request(server)
      .delete(`/api/v1/meetings/${meeting.body.id}`)
      .set(caller.headers);
    expect(deleted.status).toBe(204);
    await testApp.ctx.providerCalls.idle();
    const leaves = () =>
      recall.requestsTo("POST", `/api/v1/bot/${recallBot.id}/leave_call/`).length;
    const leaveCall = () =>
      testApp.ctx.db.providerCall.findUniqueOrThrow({
        where: { kind_target: { kind: "recall.bot.leave", target: bot.body.id as string } },
      });
    const botRow = () =>
      testApp.ctx.db.bot.findUniqueOrThrow({ where: { id: bot.body.id as string } });
    return { recallBotId: recallBot.id, leaves, leaveCall, botRow };
  }

  it("does not take a deleted meeting's bot still joining for left: its leave is retried until it is admitted and leaves", async () => {
    const sent = await deletedMeetingWithBot(["joining_call", "in_waiting_room"]);
    expect(sent.leaves()).toBe(1);
    let call = await sent.leaveCall();
    expect([call.status, call.attempts, call.reason]).toEqual(["pending", 1, "meeting_deleted"]);
    expect(call.lastError).toMatch(/not in the call yet/);
    expect((await sent.botRow()).status).toBe("in_waiting_room");

    recall.addStatusChange(sent.recallBotId, { code: "in_call_recording" });
    await testApp.ctx.db.providerCall.update({
      where: { id: call.id },
      data: { nextAttemptAt: new Date(0) },
    });
    await testApp.ctx.providerCalls.processDue({ batchSize: 50, concurrency: 1 });
    expect(sent.leaves()).toBe(2);
    call = await sent.leaveCall();
    expect([call.status, call.attempts, call.result]).toEqual(["done", 2, "left"]);
    expect((await sent.botRow()).status).toBe("call_ended");
  });

  it("records a deleted meeting's bot that had already left as left, with no further call", async () => {
    const sent = await deletedMeetingWithBot(["in_call_recording", "call_ended"]);
    expect(sent.leaves()).toBe(1);
    expect(recall.requestsTo("DELETE", `/api/v1/bot/${sent.recallBotId}/`)).toHaveLength(0);
    const call = await sent.leaveCall();
    expect([call.status, call.attempts, call.result]).toEqual(["done", 1, "already_left"]);
    expect((await sent.botRow()).status).toBe("call_ended");
  });

  it("is in the OpenAPI document", async () => {
    const doc = await request(server).get("/openapi.json");
    const paths = doc.body.paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths["/api/v1/meetings"]!)).toEqual(
      expect.arrayContaining(["get", "post"]),
    );
    expect(Object.keys(paths["/api/v1/meetings/{id}"]!)).toEqual(
      expect.arrayContaining(["get", "patch", "delete"]),
    );
    expect(Object.keys(paths["/api/v1/meetings/{id}/bot"]!)).toEqual(
      expect.arrayContaining(["get", "post", "delete"]),
    );
    expect(Object.keys(paths["/api/v1/meetings/{id}/recording"]!)).toEqual(
      expect.arrayContaining(["get", "put", "delete"]),
    );
  });
});

describe("meeting times: endTime after startTime", () => {
  const START = "2026-11-30T15:00:00.000Z";
  const END = "2026-11-30T15:45:00.000Z";

  async function meetingWithTimes(headers: Record<string, string>) {
    const res = await request(server)
      .post("/api/v1/meetings")
      .set(headers)
      .send({ title: "Timed", meetingUrl: zoomUrl(), startTime: START, endTime: END });
    expect(res.status).toBe(201);
    return res.body as { id: string; updatedAt: string };
  }

  function expectFieldError(res: request.Response, path: "startTime" | "endTime") {
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("VALIDATION_ERROR");
    expect(res.body.error.details.fields).toEqual([
      expect.objectContaining({ path, code: "invalid_range" }),
    ]);
  }

  it("POST refuses an end at or before the start, and stores nothing", async () => {
    const caller = await authHeaderFor(testApp);
    const before = await testApp.ctx.db.meeting.count({
      where: { organizationId: caller.organizationId },
    });
    for (const endTime of [START, "2026-11-30T14:59:59.999Z"]) {
      const res = await request(server)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .send({ title: "Backwards", meetingUrl: zoomUrl(), startTime: START, endTime });
      expectFieldError(res, "endTime");
      expect(res.body.error.message).toBe("endTime must be after startTime");
    }
    expect(
      await testApp.ctx.db.meeting.count({ where: { organizationId: caller.organizationId } }),
    ).toBe(before);
    // One millisecond later is a meeting.
    const ok = await request(server).post("/api/v1/meetings").set(caller.headers).send({
      title: "Short",
      meetingUrl: zoomUrl(),
      startTime: START,
      endTime: "2026-11-30T15:00:00.001Z",
    });
    expect(ok.status).toBe(201);
  });

  it("PATCH checks the times after the change, when only one of them changes too", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await meetingWithTimes(caller.headers);
    const url = `/api/v1/meetings/${meeting.id}`;
    const patch = (body: Record<string, unknown>) =>
      request(server).patch(url).set(caller.headers).send(body);

    // Only the end, to the stored start (equal) or before it.
    expectFieldError(await patch({ endTime: START }), "endTime");
    expectFieldError(await patch({ endTime: "2026-11-30T14:00:00Z" }), "endTime");
    // Only the start, to the stored end or after it: the start is what is out of order.
    expectFieldError(await patch({ startTime: END }), "startTime");
    expectFieldError(await patch({ startTime: "2026-11-30T16:00:00Z", title: "x" }), "startTime");
    // Both, out of order; and with a link change (the other update path).
    expectFieldError(
      await patch({ startTime: "2026-11-30T17:00:00Z", endTime: "2026-11-30T16:00:00Z" }),
      "endTime",
    );
    expectFieldError(await patch({ meetingUrl: zoomUrl(), endTime: START }), "endTime");
    expectFieldError(
      await patch({ meetingUrl: "https://meet.google.com/abc-defg-hij", startTime: END }),
      "startTime",
    );
    // Nothing was written by any of them.
    const unchanged = await request(server).get(url).set(caller.headers);
    expect(unchanged.body).toMatchObject({
      title: "Timed",
      startTime: START,
      endTime: END,
      updatedAt: meeting.updatedAt,
    });

    // In order: both moved together, or one moved within the other.
    const moved = await patch({
      startTime: "2026-11-30T17:00:00Z",
      endTime: "2026-11-30T18:00:00Z",
    });
    expect(moved.status).toBe(200);
    expect((await patch({ startTime: "2026-11-30T17:30:00Z" })).status).toBe(200);
    // Clearing one of them lifts the constraint.
    expect((await patch({ endTime: null })).status).toBe(200);
    expect((await patch({ startTime: "2026-11-30T19:00:00Z" })).status).toBe(200);
  });

  it("PATCH under concurrency: two changes each in order alone never leave the times out of order", async () => {
    const caller = await authHeaderFor(testApp);
    for (let round = 0; round < 6; round += 1) {
      // 15:00-15:45. Alone, start -> 15:30 is in order, and so is end -> 15:15; together not.
      const meeting = await meetingWithTimes(caller.headers);
      const url = `/api/v1/meetings/${meeting.id}`;
      // Every other round the start moves with a link change (the locked path).
      const moveStart =
        round % 2 === 0
          ? { startTime: "2026-11-30T15:30:00Z" }
          : { startTime: "2026-11-30T15:30:00Z", meetingUrl: zoomUrl() };
      const [a, b] = await Promise.all([
        request(server).patch(url).set(caller.headers).send(moveStart),
        request(server).patch(url).set(caller.headers).send({ endTime: "2026-11-30T15:15:00Z" }),
      ]);
      const statuses = [a.status, b.status].sort();
      expect(statuses).toEqual([200, 400]);
      const stored = await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } });
      expect(stored.endTime!.getTime()).toBeGreaterThan(stored.startTime!.getTime());
    }
  });

  it("PATCH of the title alone still works on a meeting stored before the rule (end = start)", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await meetingWithTimes(caller.headers);
    await testApp.ctx.db.meeting.update({
      where: { id: meeting.id },
      data: { endTime: new Date(START) },
    });
    const res = await request(server)
      .patch(`/api/v1/meetings/${meeting.id}`)
      .set(caller.headers)
      .send({ title: "Renamed" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ title: "Renamed", startTime: START, endTime: START });
    // A change of a time must put them in order.
    const res2 = await request(server)
      .patch(`/api/v1/meetings/${meeting.id}`)
      .set(caller.headers)
      .send({ startTime: START });
    expectFieldError(res2, "startTime");
  });

  it("documents the rule, and its examples are in order", async () => {
    const doc = (await request(server).get("/openapi.json")).body;
    const create = doc.components.schemas.CreateMeeting;
    expect(Date.parse(create.example.endTime)).toBeGreaterThan(
      Date.parse(create.example.startTime),
    );
    expect(Date.parse(create.properties.endTime.example)).toBeGreaterThan(
      Date.parse(create.properties.startTime.example),
    );
    const update = doc.paths["/api/v1/meetings/{id}"].patch;
    expect(update.description).toContain("VALIDATION_ERROR");
    // The 400 example is a real validation answer about the times.
    expect(
      doc.paths["/api/v1/meetings"].post.responses["400"].content["application/json"].examples
        .VALIDATION_ERROR.value,
    ).toEqual({
      error: {
        code: "VALIDATION_ERROR",
        message: "endTime must be after startTime",
        details: {
          fields: [
            { path: "endTime", message: "endTime must be after startTime", code: "invalid_range" },
          ],
        },
      },
      requestId: expect.any(String),
    });
  });
});

describe("organization isolation", () => {
  it("gives another organization 404 for the meeting, its bot and its recording", async () => {
    const owner = await authHeaderFor(testApp);
    const other = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(owner.headers)
      .send({ title: "Private", meetingUrl: zoomUrl() });
    const base = `/api/v1/meetings/${meeting.body.id}`;
    await request(server).post(`${base}/bot`).set(owner.headers);
    await request(server)
      .put(`${base}/recording`)
      .set(owner.headers)
      .set("Content-Type", "audio/mpeg")
      .send(Buffer.alloc(1000, 1));
    const recallCalls = recall.requests.length;

    const attempts: Array<[string, () => request.Test]> = [
      ["GET meeting", () => request(server).get(base)],
      ["PATCH meeting", () => request(server).patch(base).send({ title: "mine now" })],
      ["DELETE meeting", () => request(server).delete(base)],
      ["GET bot", () => request(server).get(`${base}/bot`)],
      ["POST bot", () => request(server).post(`${base}/bot`)],
      ["DELETE bot", () => request(server).delete(`${base}/bot`)],
      ["GET recording", () => request(server).get(`${base}/recording`)],
      [
        "PUT recording",
        () =>
          request(server)
            .put(`${base}/recording`)
            .set("Content-Type", "audio/mpeg")
            .send(Buffer.alloc(10)),
      ],
      ["DELETE recording", () => request(server).delete(`${base}/recording`)],
    ];
    for (const [name, attempt] of attempts) {
      const response = await attempt().set(other.headers);
      expect({ name, status: response.status }).toEqual({ name, status: 404 });
    }
    const list = await request(server).get("/api/v1/meetings").set(other.headers);
    expect(list.body.data).toEqual([]);
    expect(recall.requests.length).toBe(recallCalls);

    // Still intact for its owner.
    expect((await request(server).get(base).set(owner.headers)).body.title).toBe("Private");
    expect((await request(server).get(`${base}/bot`).set(owner.headers)).status).toBe(200);
    expect((await request(server).get(`${base}/recording`).set(owner.headers)).status).toBe(200);
  });
});

describe("API key scopes", () => {
  it("lets a read-only key read and answers 403 to every write", async () => {
    const owner = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(owner.headers)
      .send({ title: "Scoped", meetingUrl: zoomUrl() });
    const base = `/api/v1/meetings/${meeting.body.id}`;
    const key = await apiKeyHeaderFor(testApp, {
      organizationId: owner.organizationId,
      scopes: ["meetings:read", "bots:read"],
    });
    expect((await request(server).get(base).set(key.headers)).status).toBe(200);
    expect((await request(server).get("/api/v1/meetings").set(key.headers)).status).toBe(200);

    const writes: Array<[string, () => request.Test, string]> = [
      [
        "POST meeting",
        () => request(server).post("/api/v1/meetings").send({ title: "x", meetingUrl: zoomUrl() }),
        "meetings:write",
      ],
      ["PATCH meeting", () => request(server).patch(base).send({ title: "y" }), "meetings:write"],
      ["DELETE meeting", () => request(server).delete(base), "meetings:write"],
      ["POST bot", () => request(server).post(`${base}/bot`), "bots:write"],
      ["DELETE bot", () => request(server).delete(`${base}/bot`), "bots:write"],
      [
        "PUT recording",
        () =>
          request(server)
            .put(`${base}/recording`)
            .set("Content-Type", "video/mp4")
            .send(Buffer.alloc(10)),
        "meetings:write",
      ],
      ["DELETE recording", () => request(server).delete(`${base}/recording`), "meetings:write"],
    ];
    for (const [name, attempt, scope] of writes) {
      const response = await attempt().set(key.headers);
      expect({ name, status: response.status, code: response.body.error?.code }).toEqual({
        name,
        status: 403,
        code: "INSUFFICIENT_SCOPE",
      });
      expect(response.body.error.details).toEqual({ requiredScope: scope });
    }
    expect((await request(server).get(base).set(owner.headers)).body.title).toBe("Scoped");
    expect(recall.createdBots().filter((b) => b.metadata.meetingId === meeting.body.id)).toEqual(
      [],
    );
  });

  it("lets a key with bots:write but not meetings:read send a bot", async () => {
    const owner = await authHeaderFor(testApp);
    const meeting = await request(server)
      .post("/api/v1/meetings")
      .set(owner.headers)
      .send({ title: "Bots only", meetingUrl: zoomUrl() });
    const key = await apiKeyHeaderFor(testApp, {
      organizationId: owner.organizationId,
      scopes: ["bots:write"],
    });
    const bot = await request(server)
      .post(`/api/v1/meetings/${meeting.body.id}/bot`)
      .set(key.headers);
    expect(bot.status).toBe(201);
    expect(
      (await request(server).get(`/api/v1/meetings/${meeting.body.id}`).set(key.headers)).status,
    ).toBe(403);
  });
});
