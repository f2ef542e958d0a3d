import type { BotStatus, MeetingStatus, PrismaClient } from "@zigznote/database";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import {
  applyBotStatus,
  BOT_STATUS_RANK,
  FINAL_BOT_STATUSES,
  isBotStatus,
  isTerminalBotStatus,
  type ApplyBotStatusResult,
} from "./botStatus";
import { RecallRequestError, type RecallBot, type RecallClient } from "./recallClient";
import * as store from "./store";

/**
 * Making a Recall bot leave for real (BOTS.md, "Making a bot leave").
 *
 * Recall refuses `leave_call` with a 400 both to a bot that has left (the call ended) and to one
 * that is not in the call yet (dispatched, joining, in the waiting room). The second still joins
 * and records once admitted, so a refusal is never taken for "left": the bot is read back and
 * its own latest status decides. Ended: it has left. Not in the call yet: a scheduled bot that
 * Recall has not dispatched is deleted (`DELETE /api/v1/bot/{id}/`, it never joins); a dispatched
 * one cannot be stopped before it is in the call, and the caller is told so (the organization
 * deletion retries, the user's DELETE answers 409). In the call by the time it is read (admitted
 * meanwhile): the leave is asked again.
 */

/** What the leave needs: BotServiceDeps has all of it (typed here so bots/ has no import cycle). */
export interface LeaveDeps {
  db: PrismaClient;
  recall: RecallClient;
  logger: Logger;
  clock: Clock;
}

export type LeaveResult =
  /** Recall took the leave: the bot is leaving (read back once; its webhooks record the end). */
  | { outcome: "asked" }
  /** Recall refused, and the bot has indeed ended (call_ended, done, fatal, ...). */
  | { outcome: "ended" }
  /** A scheduled bot deleted before Recall dispatched it: it never joins (recorded `failed`). */
  | { outcome: "deleted" }
  /** Recall no longer has the bot (404): nothing of it can join or record (recorded `failed`). */
  | { outcome: "gone" }
  /** Dispatched and not in the call yet: it may still join and record; try again later. */
  | { outcome: "not_in_call_yet"; recallStatus: BotStatus | null };

/** Recall's statuses of a bot that is not in the call (yet). */
const NOT_IN_CALL_YET: readonly BotStatus[] = ["ready", "joining_call", "in_waiting_room"];

/** A deleted bot's meeting shows what it did before the bot was sent, if the bot moved it. */
const MEETING_BEFORE_BOT: { status: MeetingStatus; unless: readonly MeetingStatus[] } = {
  status: "scheduled",
  unless: ["recording", "processing", "completed", "failed", "cancelled"],
};

/** Applies Recall's status changes (oldest first) through applyBotStatus. */
async function applyRecallStatuses(
  deps: Pick<LeaveDeps, "db">,
  recallBot: RecallBot,
  source: string,
): Promise<ApplyBotStatusResult[]> {
  const results: ApplyBotStatusResult[] = [];
  for (const change of recallBot.status_changes) {
    const at = new Date(change.created_at);
    if (Number.isNaN(at.getTime())) continue;
    results.push(
      await applyBotStatus(deps, {
        recallBotId: recallBot.id,
        status: change.code,
        subCode: change.sub_code ?? null,
        at,
        source,
      }),
    );
  }
  return results;
}

/**
 * Reads the bot from Recall and applies its status changes: for the cleanup job (bots whose
 * webhooks never came) and after commands. Returns what Recall reported.
 */
export async function syncBotStatus(
  deps: Pick<LeaveDeps, "db" | "recall">,
  input: { recallBotId: string },
): Promise<RecallBot> {
  const recallBot = await deps.recall.getBot(input.recallBotId);
  await applyRecallStatuses(deps, recallBot, "poll");
  return recallBot;
}

/** The latest status Recall reports that we track (informational codes skipped), or null. */
export function latestRecallStatus(recallBot: RecallBot): BotStatus | null {
  let latest: { status: BotStatus; at: number } | null = null;
  for (const change of recallBot.status_changes) {
    const at = Date.parse(change.created_at);
    if (!isBotStatus(change.code) || Number.isNaN(at)) continue;
    if (latest === null || at >= latest.at) latest = { status: change.code, at };
  }
  return latest?.status ?? null;
}

/**
 * Asks Recall to make the bot leave. Null when Recall took it; the refusal when Recall answered
 * that it will not (400), or that it does not know the bot (404): its state decides what that
 * means. Anything else (Recall down, our key refused) is thrown.
 */
async function askToLeave(
  deps: LeaveDeps,
  recallBotId: string,
): Promise<RecallRequestError | null> {
  try {
    await deps.recall.leaveCall(recallBotId);
    return null;
  } catch (error) {
    if (
      error instanceof RecallRequestError &&
      (error.code === "RECALL_NOT_FOUND" ||
        (error.code === "RECALL_REJECTED" && error.recallStatus === 400))
    ) {
      return error;
    }
    throw error;
  }
}

/** The bot as Recall has it now, its statuses applied; null when Recall no longer has it. */
async function readBack(deps: LeaveDeps, recallBotId: string): Promise<RecallBot | null> {
  try {
    return await syncBotStatus(deps, { recallBotId });
  } catch (error) {
    if (error instanceof RecallRequestError && error.code === "RECALL_NOT_FOUND") return null;
    throw error;
  }
}

/**
 * Ends our bot whose Recall bot can no longer join (deleted there): `failed`, final, so no late
 * report moves it, and its meeting back to `scheduled` if the bot had moved it to `joining`.
 */
async function recordNeverJoins(
  deps: LeaveDeps,
  recallBotId: string,
  reason: string,
): Promise<void> {
  await store.writeBotStatus(deps.db, {
    guard: { recallBotId, ranks: BOT_STATUS_RANK, finalStatuses: FINAL_BOT_STATUSES },
    status: "failed",
    subCode: "zigznote_deleted",
    at: deps.clock.now(),
    isStatusTimeMonotonic: true,
    source: "api",
    terminalReason: reason,
    meeting: MEETING_BEFORE_BOT,
  });
}

/**
 * A bot not in the call yet: deleted if Recall has not dispatched it (a scheduled bot), else
 * reported as such (405: dispatched; Recall cannot stop it before it joins).
 */
async function cancelBeforeJoin(
  deps: LeaveDeps,
  recallBotId: string,
  recallStatus: BotStatus | null,
): Promise<LeaveResult> {
  try {
    await deps.recall.deleteBot(recallBotId);
  } catch (error) {
    if (!(error instanceof RecallRequestError)) throw error;
    if (error.code === "RECALL_REJECTED") return { outcome: "not_in_call_yet", recallStatus };
    // A repeat of a delete whose answer was lost finds it gone, as does a bot deleted elsewhere.
    if (error.code !== "RECALL_NOT_FOUND") throw error;
  }
  await recordNeverJoins(deps, recallBotId, "deleted at Recall before it joined the call");
  return { outcome: "deleted" };
}

/** After a successful leave: reads the bot once so its end shows without waiting for webhooks. */
async function readAfterLeave(deps: LeaveDeps, recallBotId: string): Promise<void> {
  await syncBotStatus(deps, { recallBotId }).catch((error: unknown) => {
    deps.logger.warn(
      { err: error, recallBotId },
      "could not read the bot after leave; its webhook records the end",
    );
  });
}

/**
 * Makes the Recall bot leave the call, or makes sure it never joins; see the file's comment.
 * Throws what Recall answered when it could not be asked or read (the caller retries or
 * reports it), and a second refusal of a bot that Recall shows in the call.
 */
export async function makeBotLeave(deps: LeaveDeps, recallBotId: string): Promise<LeaveResult> {
  const refusal = await askToLeave(deps, recallBotId);
  if (refusal === null) {
    await readAfterLeave(deps, recallBotId);
    return { outcome: "asked" };
  }
  const recallBot = await readBack(deps, recallBotId);
  if (recallBot === null) {
    await recordNeverJoins(deps, recallBotId, "Recall no longer has the bot");
    return { outcome: "gone" };
  }
  const status = latestRecallStatus(recallBot);
  if (status !== null && isTerminalBotStatus(status)) return { outcome: "ended" };
  if (status === null || NOT_IN_CALL_YET.includes(status)) {
    return cancelBeforeJoin(deps, recallBotId, status);
  }
  // In the call: admitted between the refusal and the read, so the leave can work now.
  deps.logger.info({ recallBotId, status, err: refusal }, "leave refused, bot now in the call");
  const again = await askToLeave(deps, recallBotId);
  if (again !== null) throw again;
  await readAfterLeave(deps, recallBotId);
  return { outcome: "asked" };
}
