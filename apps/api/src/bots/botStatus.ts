import {
  isTerminalBotStatus,
  type BotStatus,
  type Db,
  type MeetingStatus,
} from "@zigznote/database";
import * as store from "./store";

export { activeBotSql, isTerminalBotStatus, TERMINAL_BOT_STATUSES } from "@zigznote/database";

/**
 * Bot statuses, their order, and the one place they are applied.
 *
 * Recall delivers status events late, twice and out of order, and the webhook handlers, the
 * create path and the cleanup job all write statuses concurrently. Every one of those writes is
 * the one conditional UPDATE `store.writeBotStatus`: the row lock serializes writers and the
 * WHERE clause (re-checked by PostgreSQL on the latest row version) refuses what its guard does
 * not expect. Recall's reports go through `applyBotStatus`, whose guard is the ranking below:
 * nothing older than what the row already shows applies. A bot that has ended never becomes
 * active again; post-call statuses may still move it forward (call_ended -> done ->
 * analysis_done -> media_expired), and `fatal`/`failed`/`media_expired` are final: nothing
 * applies after one, and one applies to any bot that has not reached one, even when it is older
 * than what the bot shows (else `fatal` then a later `done` would end the bot differently in
 * each delivery order). Our own
 * changes (recording Recall's answer, releasing a reservation, timing out a stuck bot) apply
 * only to a bot still exactly as read, so a report that landed meanwhile wins.
 */

/** Order of the lifecycle; ties in event time are broken by it. */
export const BOT_STATUS_RANK: Readonly<Record<BotStatus, number>> = Object.freeze({
  pending: 0,
  ready: 1,
  joining_call: 2,
  in_waiting_room: 3,
  in_call_not_recording: 4,
  recording_permission_allowed: 5,
  recording_permission_denied: 5,
  in_call_recording: 6,
  call_ended: 7,
  done: 8,
  analysis_done: 9,
  analysis_failed: 9,
  media_expired: 10,
  fatal: 11,
  failed: 11,
});

/** Terminal statuses after which nothing at all is applied. */
export const FINAL_BOT_STATUSES: readonly BotStatus[] = Object.freeze([
  "fatal",
  "media_expired",
  "failed",
]);

/** True for the statuses the database enum knows (Recall sends a few informational others). */
export function isBotStatus(value: string): value is BotStatus {
  return Object.prototype.hasOwnProperty.call(BOT_STATUS_RANK, value);
}

/**
 * What the meeting shows while its bot is in `status`; null leaves the meeting as it is
 * (`pending` has not reached Recall yet, `failed` is our own released reservation, and
 * `media_expired` happens long after the meeting completed).
 */
export function meetingStatusForBot(status: BotStatus): MeetingStatus | null {
  switch (status) {
    case "ready":
    case "joining_call":
    case "in_waiting_room":
    case "in_call_not_recording":
    case "recording_permission_allowed":
    case "recording_permission_denied":
      return "joining";
    case "in_call_recording":
      return "recording";
    case "call_ended":
      return "processing";
    case "done":
    case "analysis_done":
    case "analysis_failed":
      return "completed";
    case "fatal":
      return "failed";
    case "pending":
    case "media_expired":
    case "failed":
      return null;
  }
}

/**
 * The meeting move that goes with a bot's status: `meetingStatusForBot`, except that a cancelled
 * meeting stays cancelled. Null leaves the meeting as it is.
 */
export function meetingMoveForBot(status: BotStatus): store.BotStatusWrite["meeting"] {
  const meetingStatus = meetingStatusForBot(status);
  return meetingStatus ? { status: meetingStatus, unless: ["cancelled"] } : null;
}

export interface ApplyBotStatusInput {
  recallBotId: string;
  /** Recall's status code (`data.status.code`); codes we do not track are ignored. */
  status: string;
  subCode?: string | null;
  /** When the status happened, by Recall's clock (`data.status.created_at`). */
  at: Date;
  /** Who reports it: "webhook", "create", "poll", "cleanup", ... (kept in the history). */
  source: string;
  /** Terminal reason to record instead of the default (`<status>` or `<status>: <sub_code>`). */
  terminalReason?: string;
}

export type ApplyBotStatusResult =
  | {
      applied: true;
      botId: string;
      meetingId: string;
      status: BotStatus;
      /** The bot's meeting was (soft-)deleted: an active bot should be sent home. */
      isMeetingDeleted: boolean;
    }
  | {
      applied: false;
      /**
       * unknown_status: a Recall code we do not track; not_found: no bot has this Recall id
       * (yet: a webhook can overtake the create response, so a handler should answer 5xx and
       * let Recall retry); stale: older than, or equal to, what the bot shows, or the bot has ended.
       */
      reason: "unknown_status" | "not_found" | "stale";
    };

/** What a status write needs: the database or the caller's transaction. */
export interface BotStatusDeps {
  db: Db;
}

/**
 * Applies one status event to the bot with this Recall id if it is newer than the bot's latest
 * applied status (ties: higher rank wins) and the bot has not ended (ended bots only move
 * forward among terminal statuses, never after a final one; a final status applies whatever its
 * time to a bot that has not reached one, lastStatusAt never moving back). Appends to the history, sets
 * endedAt/terminalReason on the first terminal status, and moves the meeting with its bot,
 * all in one statement. endedAt is the earliest terminal status time seen, even from a stale event.
 */
export async function applyBotStatus(
  deps: BotStatusDeps,
  input: ApplyBotStatusInput,
): Promise<ApplyBotStatusResult> {
  if (!isBotStatus(input.status)) return { applied: false, reason: "unknown_status" };
  const status = input.status;
  const isTerminal = isTerminalBotStatus(status);
  const subCode = input.subCode ?? null;
  const written = await store.writeBotStatus(deps.db, {
    guard: {
      recallBotId: input.recallBotId,
      ranks: BOT_STATUS_RANK,
      finalStatuses: FINAL_BOT_STATUSES,
    },
    status,
    subCode,
    at: input.at,
    // A final status may be older than what the bot shows (see the guard): time never moves back.
    isStatusTimeMonotonic: true,
    source: input.source,
    terminalReason: isTerminal
      ? (input.terminalReason ?? (subCode ? `${status}: ${subCode}` : status))
      : null,
    meeting: meetingMoveForBot(status),
  });
  if (written) {
    return {
      applied: true,
      botId: written.botId,
      meetingId: written.meetingId,
      status,
      isMeetingDeleted: written.isMeetingDeleted,
    };
  }
  if (isTerminal) {
    // `done` can overtake `call_ended`: the older event no longer applies, but the bot ended then.
    await store.recordEarlierEnd(deps.db, { recallBotId: input.recallBotId, at: input.at });
  }
  const exists = (await store.findBotIdByRecallId(deps.db, input.recallBotId)) !== null;
  return { applied: false, reason: exists ? "stale" : "not_found" };
}
