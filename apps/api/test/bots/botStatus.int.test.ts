import { createPrismaClient } from "@zigznote/database";
import { createBot, createMeeting, createOrganization } from "@zigznote/database/testing";
import { randomUUID } from "node:crypto";
import {
  applyBotStatus,
  BOT_STATUS_RANK,
  type ApplyBotStatusInput,
  isTerminalBotStatus,
  TERMINAL_BOT_STATUSES,
} from "../../src/bots/botStatus";
import { testDatabaseUrl } from "../support/env";
import { shuffle } from "../support/shuffled";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
afterAll(() => db.$disconnect());

const t = (seconds: number) => new Date(Date.UTC(2026, 10, 1, 12, 0, seconds));

async function setup() {
  const organization = await createOrganization(db);
  const meeting = await createMeeting(db, { organizationId: organization.id });
  const recallBotId = randomUUID();
  const bot = await createBot(db, meeting, { recallBotId, status: "ready", lastStatusAt: t(0) });
  return { organization, meeting, bot, recallBotId };
}

/** Applies `status` as a Recall webhook reported it at second `second` of the test clock. */
function applyWebhookStatus(
  recallBotId: string,
  status: ApplyBotStatusInput["status"],
  second: number,
) {
  return applyBotStatus({ db }, { recallBotId, status, at: t(second), source: "webhook" });
}

describe("applyBotStatus", () => {
  it("matches the terminal set of the partial unique indexes", async () => {
    const rows = await db.$queryRaw<{ indexdef: string }[]>`
      SELECT indexdef FROM pg_indexes WHERE indexname = 'bots_one_active_per_meeting'`;
    const definition = rows[0]!.indexdef;
    const inIndex = [...definition.matchAll(/'([a-z_]+)'/g)].map((match) => match[1]).sort();
    expect(inIndex).toEqual([...TERMINAL_BOT_STATUSES].sort());
  });

  it("applies a newer status, moves the meeting and records the history", async () => {
    const { meeting, recallBotId } = await setup();
    const result = await applyWebhookStatus(recallBotId, "in_call_recording", 10);
    expect(result).toMatchObject({ applied: true, status: "in_call_recording" });
    const bot = await db.bot.findUniqueOrThrow({ where: { recallBotId } });
    expect(bot.status).toBe("in_call_recording");
    expect(bot.lastStatusAt).toEqual(t(10));
    expect(bot.statusHistory).toEqual([
      { status: "in_call_recording", at: t(10).toISOString(), source: "webhook" },
    ]);
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "recording",
    );
  });

  it("ignores an older status arriving after a newer one", async () => {
    const { recallBotId } = await setup();
    await applyWebhookStatus(recallBotId, "in_call_recording", 20);
    const late = await applyWebhookStatus(recallBotId, "joining_call", 5);
    expect(late).toEqual({ applied: false, reason: "stale" });
    expect((await db.bot.findUniqueOrThrow({ where: { recallBotId } })).status).toBe(
      "in_call_recording",
    );
  });

  it("breaks a tie in time by rank and ignores an exact duplicate", async () => {
    const { recallBotId } = await setup();
    await applyWebhookStatus(recallBotId, "in_call_recording", 30);
    expect(await applyWebhookStatus(recallBotId, "in_call_not_recording", 30)).toMatchObject({
      applied: false,
    });
    expect(await applyWebhookStatus(recallBotId, "in_call_recording", 30)).toMatchObject({
      applied: false,
    });
    expect(await applyWebhookStatus(recallBotId, "call_ended", 30)).toMatchObject({
      applied: true,
    });
  });

  it("ends out-of-order, duplicated and concurrent deliveries in the latest status", async () => {
    const { meeting, recallBotId } = await setup();
    const lifecycle = [
      ["joining_call", 1],
      ["in_waiting_room", 2],
      ["in_call_not_recording", 3],
      ["in_call_recording", 4],
      ["call_ended", 5],
      ["done", 6],
    ] as const;
    const deliveries = shuffle([...lifecycle, ...lifecycle, ...lifecycle]);
    await Promise.all(
      deliveries.map(([status, second]) =>
        applyBotStatus({ db }, { recallBotId, status, at: t(second), source: "webhook" }),
      ),
    );
    const bot = await db.bot.findUniqueOrThrow({ where: { recallBotId } });
    expect(bot.status).toBe("done");
    expect(bot.lastStatusAt).toEqual(t(6));
    expect(bot.endedAt).toEqual(t(5));
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "completed",
    );
    // Every applied entry moved forward: the history is strictly increasing in (time, rank).
    const history = bot.statusHistory as { status: keyof typeof BOT_STATUS_RANK; at: string }[];
    for (let i = 1; i < history.length; i += 1) {
      const previous = history[i - 1]!;
      const current = history[i]!;
      expect(
        current.at > previous.at ||
          (current.at === previous.at &&
            BOT_STATUS_RANK[current.status] > BOT_STATUS_RANK[previous.status]),
      ).toBe(true);
    }
  });

  it("never reactivates an ended bot, but lets it move forward among terminal statuses", async () => {
    const { recallBotId } = await setup();
    await applyWebhookStatus(recallBotId, "call_ended", 10);
    expect(await applyWebhookStatus(recallBotId, "in_call_recording", 11)).toEqual({
      applied: false,
      reason: "stale",
    });
    expect(await applyWebhookStatus(recallBotId, "done", 12)).toMatchObject({ applied: true });
    const bot = await db.bot.findUniqueOrThrow({ where: { recallBotId } });
    expect(bot.status).toBe("done");
    expect(bot.endedAt).toEqual(t(10));
  });

  it("makes fatal final and records its sub code as the terminal reason", async () => {
    const { meeting, recallBotId } = await setup();
    await applyBotStatus(
      { db },
      {
        recallBotId,
        status: "fatal",
        subCode: "bot_errored",
        at: t(10),
        source: "webhook",
      },
    );
    expect(await applyWebhookStatus(recallBotId, "done", 20)).toEqual({
      applied: false,
      reason: "stale",
    });
    const bot = await db.bot.findUniqueOrThrow({ where: { recallBotId } });
    expect(bot).toMatchObject({
      status: "fatal",
      subCode: "bot_errored",
      terminalReason: "fatal: bot_errored",
    });
    expect(isTerminalBotStatus(bot.status)).toBe(true);
    expect((await db.meeting.findUniqueOrThrow({ where: { id: meeting.id } })).status).toBe(
      "failed",
    );
  });

  it("reports unknown codes and unknown bots without writing", async () => {
    const { recallBotId } = await setup();
    expect(await applyWebhookStatus(recallBotId, "recording_done", 10)).toEqual({
      applied: false,
      reason: "unknown_status",
    });
    expect(
      await applyBotStatus(
        { db },
        {
          recallBotId: randomUUID(),
          status: "done",
          at: t(10),
          source: "webhook",
        },
      ),
    ).toEqual({ applied: false, reason: "not_found" });
  });
});
