import type { BotStatus, PrismaClient } from "@zigznote/database";
import pLimit from "p-limit";
import type { Logger } from "../lib/logger";
import { applyBotStatus, isBotStatus } from "./botStatus";
import { RecallRequestError, type RecallBot, type RecallClient } from "./recallClient";
import * as store from "./store";

/** What the stuck-bot job needs. */
export interface StuckBotDeps {
  db: PrismaClient;
  logger: Logger;
  /** Where each stuck bot is checked first. */
  recall: RecallClient;
  /** An active bot without a status change for this long is checked with Recall. */
  stuckAfterMinutes: number;
  batchSize: number;
  concurrency: number;
}

export interface OrphanedBotsResult {
  rowsAffected: number;
  summary: {
    timedOut: number;
    releasedReservations: number;
    synced: number;
    stillRecording: number;
    changedMeanwhile: number;
    recallErrors: number;
  };
}

type StuckBot = store.StuckBotRow;

/** Statuses before the bot records: a bot ended there leaves a failed meeting. */
const PRE_RECORDING: readonly BotStatus[] = [
  "pending",
  "ready",
  "joining_call",
  "in_waiting_room",
  "in_call_not_recording",
  "recording_permission_allowed",
  "recording_permission_denied",
];

/**
 * Ends the bot only if it is exactly as selected (same status, same last status time): a
 * webhook or a sync that landed since wins. Also moves the meeting: to `failed` when the bot
 * never recorded, else to `processing` (a completed or cancelled meeting stays as it is).
 * Returns whether it applied.
 */
async function endStuckBot(
  deps: StuckBotDeps,
  bot: StuckBot,
  now: Date,
  reason: string,
  status: BotStatus,
): Promise<boolean> {
  const ended = await store.writeBotStatus(deps.db, {
    guard: { botId: bot.id, status: bot.status, lastStatusAt: bot.last_status_at },
    status,
    subCode: "zigznote_timeout",
    at: now,
    source: "cleanup",
    terminalReason: reason,
    meeting: {
      status: PRE_RECORDING.includes(bot.status) ? "failed" : "processing",
      unless: ["cancelled", "completed"],
    },
  });
  return ended !== null;
}

/**
 * Active bots with no status change for STUCK_BOT_AFTER_MINUTES, measured from the bot's own
 * last status, not its meeting. Each is checked with Recall first (a few at a time):
 * - Recall reports a newer status: apply it (the webhook was lost);
 * - Recall reports the bot recording: a long meeting, leave it alone;
 * - otherwise: end it (reason timeout) if nothing changed since selection, then tell it to leave.
 * A reservation that never got a Recall id (the creating process died) is released.
 * Bots are read in keyset-ordered batches over a partial index of active bots.
 */
export async function cleanupOrphanedBots(
  deps: StuckBotDeps,
  input: { now: Date },
): Promise<OrphanedBotsResult> {
  const { now } = input;
  const { recall } = deps;
  const stuckBefore = new Date(now.getTime() - deps.stuckAfterMinutes * 60_000);
  const minutes = deps.stuckAfterMinutes;
  const limit = pLimit(deps.concurrency);
  const summary = {
    timedOut: 0,
    releasedReservations: 0,
    synced: 0,
    stillRecording: 0,
    changedMeanwhile: 0,
    recallErrors: 0,
  };
  let after: { at: Date; id: string } | null = null;

  const handle = async (bot: StuckBot): Promise<void> => {
    if (bot.recall_bot_id === null) {
      const released = await endStuckBot(
        deps,
        bot,
        now,
        `timeout: reservation never got a Recall bot within ${minutes} minutes`,
        "failed",
      );
      if (released) summary.releasedReservations += 1;
      else summary.changedMeanwhile += 1;
      return;
    }
    let recallBot: RecallBot | null;
    try {
      recallBot = await recall.getBot(bot.recall_bot_id);
    } catch (error) {
      if (error instanceof RecallRequestError && error.code === "RECALL_NOT_FOUND") {
        recallBot = null;
      } else {
        summary.recallErrors += 1;
        deps.logger.warn(
          { err: error, botId: bot.id },
          "could not read a stuck bot from Recall; retrying next run",
        );
        return;
      }
    }
    const latest = recallBot?.status_changes
      .map((change) => ({ ...change, at: new Date(change.created_at) }))
      .filter((change) => !Number.isNaN(change.at.getTime()))
      .sort((a, b) => a.at.getTime() - b.at.getTime())
      .at(-1);
    if (latest && latest.at > bot.last_status_at && isBotStatus(latest.code)) {
      const result = await applyBotStatus(deps, {
        recallBotId: bot.recall_bot_id,
        status: latest.code,
        subCode: latest.sub_code ?? null,
        at: latest.at,
        source: "cleanup",
      });
      if (result.applied) summary.synced += 1;
      else summary.changedMeanwhile += 1;
      return;
    }
    if (latest?.code === "in_call_recording") {
      summary.stillRecording += 1;
      return;
    }
    const ended = await endStuckBot(
      deps,
      bot,
      now,
      `timeout: no status change for ${minutes} minutes`,
      "call_ended",
    );
    if (!ended) {
      summary.changedMeanwhile += 1;
      return;
    }
    summary.timedOut += 1;
    if (recallBot) {
      await recall.leaveCall(bot.recall_bot_id).catch((error: unknown) => {
        deps.logger.warn(
          { err: error, botId: bot.id },
          "ended a stuck bot but Recall refused leave_call",
        );
      });
    }
  };

  for (;;) {
    const batch: StuckBot[] = await store.findStuckBotPage(deps.db, {
      before: stuckBefore,
      after,
      limit: deps.batchSize,
    });
    if (batch.length === 0) break;
    await Promise.all(batch.map((bot) => limit(() => handle(bot))));
    const last: StuckBot = batch[batch.length - 1]!;
    after = { at: last.last_status_at, id: last.id };
  }

  return {
    rowsAffected: summary.timedOut + summary.releasedReservations + summary.synced,
    summary,
  };
}
