import { createPrismaClient } from "@zigznote/database";
import { createOrganization } from "@zigznote/database/testing";
import { BadGatewayError, ConflictError, NotFoundError } from "@zigznote/shared";
import { randomUUID } from "node:crypto";
import { systemClock } from "../../src/lib/clock";
import { createLogger } from "../../src/lib/logger";
import { applyBotStatus, TERMINAL_BOT_STATUSES } from "../../src/bots";
import {
  createBot,
  releaseBotOfDeletedMeeting,
  getCurrentBot,
  removeBot,
  LEAVE_CALL,
  leaveCallExecutor,
  type BotServiceDeps,
} from "../../src/bots";
import { createProviderCalls } from "../../src/providerCalls";
import { createMeeting, deleteMeeting, type MeetingDeps } from "../../src/meetings";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { testDatabaseUrl } from "../support/env";
import { fakeRecallClient } from "../support/recallApp";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 20 });
let recall: FakeRecall;
let deps: BotServiceDeps;
/** The same, with a short Recall timeout for the tests where Recall never answers. */
let impatient: BotServiceDeps;

function makeDeps(timeoutMs: number): BotServiceDeps {
  return {
    db,
    recall: fakeRecallClient(recall, {
      timeoutMs,
      maxRetries: 2,
      retryBaseMs: 5,
      retryMaxMs: 2_000,
    }),
    logger: createLogger(process.env.LOG_LEVEL ?? "silent"),
    clock: systemClock,
    defaultBotName: "zigznote",
  };
}

beforeAll(async () => {
  recall = await startFakeRecall();
  // Generous: on a loaded machine a slow answer must not turn into a (harmless) retry.
  deps = makeDeps(10_000);
  impatient = makeDeps(300);
});
afterAll(async () => {
  await recall.close();
  await db.$disconnect();
});
beforeEach(() => recall.reset());

let sequence = 0;
function uniqueZoomId(): string {
  sequence += 1;
  return `9${`${Date.now()}`.slice(-7)}${String(sequence).padStart(3, "0")}`;
}

async function setup(meetingUrl = `https://zoom.us/j/${uniqueZoomId()}?pwd=abc`) {
  const organization = await createOrganization(db);
  const meeting = await createMeeting(
    { db, clock: systemClock },
    {
      organizationId: organization.id,
      title: "Sync",
      meetingUrl,
    },
  );
  return { organizationId: organization.id, meeting };
}

async function activeBots(meetingId: string) {
  return db.bot.findMany({
    where: {
      meetingId,
      status: {
        notIn: [...TERMINAL_BOT_STATUSES],
      },
    },
  });
}

describe("createBot", () => {
  it("reserves, calls Recall once and records Recall's bot id; the meeting starts joining", async () => {
    const { organizationId, meeting } = await setup();
    const bot = await createBot(deps, { organizationId, meetingId: meeting.id, botName: "Notes" });
    const [created] = recall.createdBots();
    expect(bot).toMatchObject({ recallBotId: created!.id, status: "ready", botName: "Notes" });
    expect(created!.metadata).toEqual({ meetingId: meeting.id, organizationId, botId: bot.id });
    expect(recall.requestsTo("POST", "/api/v1/bot/")[0]!.headers["idempotency-key"]).toBe(bot.id);
    expect(recall.requestsTo("POST", "/api/v1/bot/")[0]!.body).toMatchObject({
      meeting_url: meeting.meetingUrl,
      bot_name: "Notes",
    });
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "joining",
    );
    expect((bot.statusHistory as { status: string }[]).map((e) => e.status)).toEqual([
      "pending",
      "ready",
    ]);
  });

  it("lets exactly one of 50 concurrent requests for one meeting through", async () => {
    const { organizationId, meeting } = await setup();
    recall.setLatency(20);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => createBot(deps, { organizationId, meetingId: meeting.id })),
    );
    const fulfilled = results.filter((r) => r.status === "fulfilled");
    const others = results.filter(
      (r): r is PromiseRejectedResult =>
        r.status === "rejected" && !(r.reason instanceof ConflictError),
    );
    expect(others.map((r) => String(r.reason))).toEqual([]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
    expect(fulfilled).toHaveLength(1);
    expect(rejected).toHaveLength(49);
    for (const { reason } of rejected) {
      expect(reason).toBeInstanceOf(ConflictError);
      expect(reason).toMatchObject({ status: 409, code: "BOT_ALREADY_ACTIVE" });
    }
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(1);
    expect(recall.createdBots()).toHaveLength(1);
    expect(await activeBots(meeting.id)).toHaveLength(1);
    expect(await db.bot.count({ where: { meetingId: meeting.id } })).toBe(1);
  });

  it("refuses a second meeting whose link differs only in ways normalization removes", async () => {
    const id = uniqueZoomId();
    const { organizationId, meeting } = await setup(`https://us02web.zoom.us/j/${id}?pwd=one`);
    const twin = await createMeeting(
      { db, clock: systemClock },
      {
        organizationId,
        title: "Same call",
        meetingUrl: `HTTPS://ACME.zoom.us/j/${id}/?pwd=two&utm_source=calendar`,
      },
    );
    await createBot(deps, { organizationId, meetingId: meeting.id });
    const error = await createBot(deps, { organizationId, meetingId: twin.id }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConflictError);
    expect(error).toMatchObject({
      code: "BOT_ALREADY_ACTIVE_FOR_URL",
      details: { meetingId: twin.id, conflictingMeetingId: meeting.id },
    });
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("does not let another organization's bot block the same link", async () => {
    const id = uniqueZoomId();
    const a = await setup(`https://zoom.us/j/${id}`);
    const b = await setup(`https://zoom.us/j/${id}`);
    await createBot(deps, { organizationId: a.organizationId, meetingId: a.meeting.id });
    await expect(
      createBot(deps, { organizationId: b.organizationId, meetingId: b.meeting.id }),
    ).resolves.toMatchObject({ status: "ready" });
  });

  it("allows a new bot once the previous one has ended", async () => {
    const { organizationId, meeting } = await setup();
    const first = await createBot(deps, { organizationId, meetingId: meeting.id });
    await expect(createBot(deps, { organizationId, meetingId: meeting.id })).rejects.toBeInstanceOf(
      ConflictError,
    );
    const applied = await applyBotStatus(
      { db },
      {
        recallBotId: first.recallBotId!,
        status: "done",
        at: new Date(Date.now() + 1000),
        source: "webhook",
      },
    );
    expect(applied.applied).toBe(true);
    const second = await createBot(deps, { organizationId, meetingId: meeting.id });
    expect(second.id).not.toBe(first.id);
    expect(recall.createdBots()).toHaveLength(2);
  });

  it("releases the reservation when Recall answers 500: 502 and no active bot remains", async () => {
    const { organizationId, meeting } = await setup();
    recall.failNext({ status: 500, body: { detail: "internal error" } });
    const error = await createBot(deps, { organizationId, meetingId: meeting.id }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadGatewayError);
    expect(error).toMatchObject({ status: 502, code: "RECALL_UNAVAILABLE" });
    expect(await activeBots(meeting.id)).toHaveLength(0);
    const [failed] = await db.bot.findMany({ where: { meetingId: meeting.id } });
    expect(failed).toMatchObject({ status: "failed", recallBotId: null });
    expect(failed!.terminalReason).toMatch(/^recall_create_failed: RECALL_UNAVAILABLE/);
    expect(failed!.endedAt).not.toBeNull();
    // The meeting is free again.
    await expect(createBot(deps, { organizationId, meetingId: meeting.id })).resolves.toMatchObject(
      {
        status: "ready",
      },
    );
  });

  it("releases the reservation when Recall never answers: 502 after the retries", async () => {
    const { organizationId, meeting } = await setup();
    recall.failNext({ hang: true }, { times: 3 });
    const error = await createBot(impatient, { organizationId, meetingId: meeting.id }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: 502, code: "RECALL_UNAVAILABLE" });
    expect((error as Error).message).toMatch(/no answer within 300 ms/);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(3);
    expect(await activeBots(meeting.id)).toHaveLength(0);
    const [failed] = await db.bot.findMany({ where: { meetingId: meeting.id } });
    expect(failed!.terminalReason).toMatch(/recall_create_failed: .*no answer within 300 ms/);
  });

  it("retries Recall's 429 after Retry-After and succeeds", async () => {
    const { organizationId, meeting } = await setup();
    recall.failNext({ status: 429, retryAfter: "1" });
    const bot = await createBot(deps, { organizationId, meetingId: meeting.id });
    expect(bot.status).toBe("ready");
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(2);
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("tells Recall's bot to leave when the reservation is lost before its id is recorded", async () => {
    const { organizationId, meeting } = await setup();
    recall.setLatency(250);
    const pending = createBot(deps, { organizationId, meetingId: meeting.id }).catch(
      (e: unknown) => e,
    );
    // Meanwhile the reservation is released (as the cleanup job does with stuck reservations).
    let released = 0;
    while (released === 0) {
      released = await db.bot
        .updateMany({
          where: { meetingId: meeting.id, status: "pending" },
          data: { status: "failed", terminalReason: "test: released", endedAt: new Date() },
        })
        .then((r) => r.count);
    }
    const error = await pending;
    expect(error).toMatchObject({ status: 409, code: "BOT_RESERVATION_LOST" });
    const [created] = recall.createdBots();
    expect(recall.requestsTo("POST", `/api/v1/bot/${created!.id}/leave_call/`)).toHaveLength(1);
    expect(await activeBots(meeting.id)).toHaveLength(0);
  });

  it("answers NotFoundError for another organization's meeting and calls nobody", async () => {
    const { meeting } = await setup();
    const other = await createOrganization(db);
    await expect(
      createBot(deps, { organizationId: other.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      createBot(deps, { organizationId: other.id, meetingId: "x" }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(recall.requests).toHaveLength(0);
    expect(await db.bot.count({ where: { meetingId: meeting.id } })).toBe(0);
  });
});

describe("getCurrentBot / removeBot / deleteMeeting", () => {
  it("shows the current bot only to the meeting's organization", async () => {
    const { organizationId, meeting } = await setup();
    await expect(
      getCurrentBot(deps, { organizationId: organizationId, meetingId: meeting.id }),
    ).rejects.toMatchObject({
      code: "BOT_NOT_FOUND",
    });
    const bot = await createBot(deps, { organizationId, meetingId: meeting.id });
    expect(
      (await getCurrentBot(deps, { organizationId: organizationId, meetingId: meeting.id })).id,
    ).toBe(bot.id);
    const other = await createOrganization(db);
    await expect(
      getCurrentBot(deps, { organizationId: other.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      removeBot(deps, { organizationId: other.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    expect(recall.requests.filter((r) => r.path.includes("leave_call"))).toHaveLength(0);
  });

  it("asks the bot to leave and applies what Recall reports", async () => {
    const { organizationId, meeting } = await setup();
    const bot = await createBot(deps, { organizationId, meetingId: meeting.id });
    const after = await removeBot(deps, { organizationId, meetingId: meeting.id });
    expect(recall.requestsTo("POST", `/api/v1/bot/${bot.recallBotId}/leave_call/`)).toHaveLength(1);
    expect(after.status).toBe("call_ended");
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "processing",
    );
    await expect(removeBot(deps, { organizationId, meetingId: meeting.id })).rejects.toMatchObject({
      code: "BOT_NOT_ACTIVE",
    });
  });

  it("deletes the meeting and sends its active bot home", async () => {
    const { organizationId, meeting } = await setup();
    const bot = await createBot(deps, { organizationId, meetingId: meeting.id });
    const calls = createProviderCalls({ db, clock: systemClock, logger: deps.logger });
    calls.register(LEAVE_CALL, leaveCallExecutor(deps));
    const meetingDeps: MeetingDeps = {
      db,
      clock: systemClock,
      onMeetingDeleted: (deleted) => releaseBotOfDeletedMeeting({ db, calls }, deleted),
    };
    await deleteMeeting(meetingDeps, { organizationId, meetingId: meeting.id });
    await calls.idle();
    expect(recall.requestsTo("POST", `/api/v1/bot/${bot.recallBotId}/leave_call/`)).toHaveLength(1);
    await expect(
      getCurrentBot(deps, { organizationId: organizationId, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      deleteMeeting(meetingDeps, { organizationId, meetingId: randomUUID() }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });
});
