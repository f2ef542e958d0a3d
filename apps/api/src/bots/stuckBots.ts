import type { BotStatus, PrismaClient } from "@zigznote/database";
import pLimit from "p-limit";
import { transaction } from "../lib/afterCommit";
import type { Logger } from "../lib/logger";
import { DAY_MS } from "../lib/time";
import type { ProviderCalls } from "../providerCalls";
import { enqueueRecordingImport } from "../recordings";
import { applyBotStatus, isBotStatus, isTerminalBotStatus } from "./botStatus";
import { queueBotLeaves } from "./leaveCalls";
import { RecallRequestError, type RecallBot, type RecallClient } from "./recallClient";
import * as store from "./store";

/** What the stuck-bot job needs. */
export interface StuckBotDeps {
  db: PrismaClient;
  logger: Logger;
  /** Where each stuck bot is checked first. */
  recall: RecallClient;
  /** The provider-call queue: a stuck bot Recall still has is sent home there (leaveCalls.ts). */
  calls: Pick<ProviderCalls, "enqueue">;
  /** An active bot without a status change for this long is checked with Recall. */
  stuckAfterMinutes: number;
  batchSize: number;
  concurrency: number;
}

export interface OrphanedBotsResult {
  rowsAffected: number;
  summary: {
    /** Ended here: Recall no longer has the bot, or reports it ended (its webhook was lost). */
    timedOut: number;
    /** Recall still has the bot: its leave is queued (newly) and the leave records its end. */
    leaveQueued: number;
    /** Recall still has the bot and its leave was already queued (still trying: not in the call yet). */
    leavePending: number;
    releasedReservations: number;
    synced: number;
    stillRecording: number;
    changedMeanwhile: number;
    recallErrors: number;
    /** Recordings whose copy was queued because Recall reported `done` (the webhook was lost). */
    importsQueued: number;
  };
}

/**
 * How long a bot left at `call_ended` is read back for its lost `done` (Recall retries a webhook
 * for a day; past that nothing more is coming).
 */
const POST_CALL_SYNC_MS = DAY_MS;

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
 * Queues the bot's leave (reason `stuck_bot`) only if it is exactly as selected: a webhook or a
 * sync that landed since wins. The bot row is not written: the leave records the end as Recall
 * reports it (leaveCalls.ts). Null when the bot changed; else whether the leave is newly queued.
 */
async function queueStuckBotLeave(deps: StuckBotDeps, bot: StuckBot): Promise<boolean | null> {
  return transaction(deps.db, async (tx) => {
    const locked = await store.lockBotIfUnchanged(tx, {
      botId: bot.id,
      status: bot.status,
      lastStatusAt: bot.last_status_at,
    });
    if (!locked) return null;
    const queued = await queueBotLeaves(
      { db: tx, calls: deps.calls },
      { organizationId: locked.organizationId, botIds: [bot.id], reason: "stuck_bot" },
    );
    return queued > 0;
  });
}

/**
 * Queues the copy of the bot's recording (once per Recall bot, as the `done` webhook does) unless
 * its meeting was deleted; the retryRecordingImports job copies it. True when newly queued.
 */
async function queueRecordingImport(
  deps: StuckBotDeps,
  recallBotId: string,
  now: Date,
): Promise<boolean> {
  const bot = await store.findBotForRecording(deps.db, recallBotId);
  if (!bot || bot.meeting.deletedAt) return false;
  const importId = await enqueueRecordingImport(
    { db: deps.db },
    {
      organizationId: bot.organizationId,
      meetingId: bot.meetingId,
      botId: bot.id,
      externalId: recallBotId,
      now,
    },
  );
  return importId !== null;
}

/**
 * Active bots with no status change for STUCK_BOT_AFTER_MINUTES, measured from the bot's own
 * last status, not its meeting. Each is checked with Recall first (a few at a time):
 * - Recall reports newer statuses: apply them in order (the webhooks were lost), the meeting
 *   following each; a `done` among them queues the recording's copy, as its webhook would have;
 * - Recall reports the bot recording: a long meeting, leave it alone;
 * - Recall no longer has the bot, or reports it ended: end it (reason timeout) if nothing
 *   changed since selection;
 * - otherwise Recall still has it (in the call, or still joining, or in the waiting room): queue
 *   its leave (leaveCalls.ts) if nothing changed since selection, and write nothing on the bot.
 *   The leave records its end from Recall. A bot not in the call yet cannot be made to leave and
 *   would record once admitted, so it stays active (as Recall reports it) while its leave is
 *   retried, until it has left, was deleted before dispatch, or Recall ended it; ending it here
 *   would free its meeting for a second bot and hide one that records (BOTS.md).
 * A reservation that never got a Recall id is released once it is older than its creation can
 * take (twice Recall's longest call with retries, at least 5 minutes): its creating process died,
 * and until then the meeting could get no bot. Its Recall bot, if Recall made one, is told to
 * leave by its next webhook (its metadata names the released reservation).
 * Bots left at `call_ended` (for up to a day past the threshold) are read back the same way, for
 * the `done` whose webhook was lost; they are never timed out (they have ended already).
 * Bots are read in keyset-ordered batches over a partial index of active bots, then over the
 * (status, last_status_at) index.
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
    leaveQueued: 0,
    leavePending: 0,
    releasedReservations: 0,
    synced: 0,
    stillRecording: 0,
    changedMeanwhile: 0,
    recallErrors: 0,
    importsQueued: 0,
  };

  const handle = async (bot: StuckBot): Promise<void> => {
    if (bot.recall_bot_id === null) {
      const waited = Math.round((now.getTime() - bot.last_status_at.getTime()) / 60_000);
      const released = await endStuckBot(
        deps,
        bot,
        now,
        `timeout: reservation never got a Recall bot within ${waited} minutes`,
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
    const changes = (recallBot?.status_changes ?? [])
      .map((change) => ({ ...change, at: new Date(change.created_at) }))
      .filter((change) => !Number.isNaN(change.at.getTime()))
      .sort((a, b) => a.at.getTime() - b.at.getTime());
    const latest = changes.at(-1);
    const newer = changes.filter(
      (change) => change.at > bot.last_status_at && isBotStatus(change.code),
    );
    if (newer.length > 0) {
      let applied = false;
      for (const change of newer) {
        const result = await applyBotStatus(deps, {
          recallBotId: bot.recall_bot_id,
          status: change.code,
          subCode: change.sub_code ?? null,
          at: change.at,
          source: "cleanup",
        });
        applied ||= result.applied;
      }
      if (applied) summary.synced += 1;
      else summary.changedMeanwhile += 1;
      const isReady = newer.some((change) => change.code === "done");
      const isExpired = changes.some((change) => change.code === "media_expired");
      if (isReady && !isExpired && (await queueRecordingImport(deps, bot.recall_bot_id, now))) {
        summary.importsQueued += 1;
      }
      return;
    }
    // An ended bot waits for its `done`; it is not timed out again.
    if (bot.status === "call_ended") return;
    if (latest?.code === "in_call_recording") {
      summary.stillRecording += 1;
      return;
    }
    if (recallBot && !(latest && isBotStatus(latest.code) && isTerminalBotStatus(latest.code))) {
      const queued = await queueStuckBotLeave(deps, bot);
      if (queued === null) summary.changedMeanwhile += 1;
      else if (queued) summary.leaveQueued += 1;
      else summary.leavePending += 1;
      return;
    }
    // Nothing of it is in a call (Recall no longer has it, or has ended it): it ends here.
    const ended = await endStuckBot(
      deps,
      bot,
      now,
      `timeout: no status change for ${minutes} minutes`,
      "call_ended",
    );
    if (ended) summary.timedOut += 1;
    else summary.changedMeanwhile += 1;
  };

  // A reservation waits for Recall's answer at most this long (twice the client's longest call,
  // at least 5 minutes); past it, its creating process is gone and nothing will record an id.
  const pendingAfterMs = Math.min(
    deps.stuckAfterMinutes * 60_000,
    Math.max(5 * 60_000, 2 * recall.longestCallMs()),
  );
  const pendingBefore = new Date(now.getTime() - pendingAfterMs);

  for (const which of ["pending", "active", "post_call"] as const) {
    let after: { at: Date; id: string } | null = null;
    for (;;) {
      const batch: StuckBot[] = await store.findStuckBotPage(deps.db, {
        which,
        before: which === "pending" ? pendingBefore : stuckBefore,
        since:
          which === "post_call" ? new Date(stuckBefore.getTime() - POST_CALL_SYNC_MS) : undefined,
        after,
        limit: deps.batchSize,
      });
      if (batch.length === 0) break;
      await Promise.all(batch.map((bot) => limit(() => handle(bot))));
      const last: StuckBot = batch[batch.length - 1]!;
      after = { at: last.last_status_at, id: last.id };
    }
  }

  return {
    rowsAffected:
      summary.timedOut + summary.releasedReservations + summary.synced + summary.leaveQueued,
    summary,
  };
}
