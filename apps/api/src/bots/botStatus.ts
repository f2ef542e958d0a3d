import {
  isTerminalBotStatus,
  TERMINAL_BOT_STATUSES,
  type BotStatus,
  type Db,
  type MeetingStatus,
} from "@zigznote/database";

export { activeBotSql, isTerminalBotStatus, TERMINAL_BOT_STATUSES } from "@zigznote/database";

/**
 * Bot statuses, their order, and the one place they are applied.
 *
 * Recall delivers status events late, twice and out of order, and the webhook handlers, the
 * create path and the cleanup job all write statuses concurrently. `applyBotStatus` is therefore
 * one conditional UPDATE: the row lock serializes writers and the WHERE clause (re-checked by
 * PostgreSQL on the latest row version) refuses anything older than what the row already shows.
 * A bot that has ended never becomes active again; post-call statuses may still move it forward
 * (call_ended -> done -> analysis_done -> media_expired), and `fatal`/`failed`/`media_expired`
 * are final.
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

const ALL_STATUSES = Object.keys(BOT_STATUS_RANK) as BotStatus[];

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
  | { applied: true; botId: string; meetingId: string; status: BotStatus }
  | {
      applied: false;
      /**
       * unknown_status: a Recall code we do not track; not_found: no bot has this Recall id
       * (yet: a webhook can overtake the create response, so a handler should answer 5xx and
       * let Recall retry); stale: older than, or equal to, what the bot shows, or the bot has ended.
       */
      reason: "unknown_status" | "not_found" | "stale";
    };

interface AppliedRow {
  id: string;
  meeting_id: string;
}

/**
 * Applies one status event to the bot with this Recall id if it is newer than the bot's latest
 * applied status (ties: higher rank wins) and the bot has not ended (ended bots only move
 * forward among terminal statuses, never after a final one). Appends to the history, sets
 * endedAt/terminalReason on the first terminal status, and moves the meeting with its bot,
 * all in one statement. endedAt is the earliest terminal status time seen, even from a stale event.
 */
export async function applyBotStatus(
  db: Db,
  input: ApplyBotStatusInput,
): Promise<ApplyBotStatusResult> {
  if (!isBotStatus(input.status)) return { applied: false, reason: "unknown_status" };
  const status = input.status;
  const rank = BOT_STATUS_RANK[status];
  const isTerminal = isTerminalBotStatus(status);
  const subCode = input.subCode ?? null;
  const reason = isTerminal
    ? (input.terminalReason ?? (subCode ? `${status}: ${subCode}` : status))
    : null;
  const meetingStatus = meetingStatusForBot(status);
  const historyEntry = JSON.stringify({
    status,
    ...(subCode ? { subCode } : {}),
    at: input.at.toISOString(),
    source: input.source,
  });
  const statusNames = ALL_STATUSES as string[];
  const statusRanks = ALL_STATUSES.map((name) => BOT_STATUS_RANK[name]);
  const terminal = TERMINAL_BOT_STATUSES as string[];
  const final = FINAL_BOT_STATUSES as string[];

  const rows = await db.$queryRaw<AppliedRow[]>`
    WITH applied AS (
      UPDATE bots SET
        status = ${status}::"BotStatus",
        sub_code = ${subCode},
        last_status_at = ${input.at},
        status_history = status_history || jsonb_build_array(${historyEntry}::jsonb),
        ended_at = CASE WHEN ${isTerminal} THEN COALESCE(ended_at, ${input.at}) ELSE ended_at END,
        terminal_reason = CASE WHEN ${isTerminal} THEN ${reason} ELSE terminal_reason END,
        updated_at = now()
      WHERE recall_bot_id = ${input.recallBotId}
        AND (last_status_at < ${input.at}
             OR (last_status_at = ${input.at}
                 AND (${statusRanks}::int[])[array_position(${statusNames}::text[], status::text)] < ${rank}))
        AND NOT (status::text = ANY(${final}::text[]))
        AND (NOT (status::text = ANY(${terminal}::text[]))
             OR (${isTerminal}
                 AND (${statusRanks}::int[])[array_position(${statusNames}::text[], status::text)] < ${rank}))
      RETURNING id, meeting_id
    ), moved AS (
      UPDATE meetings SET status = ${meetingStatus}::"MeetingStatus", updated_at = now()
      WHERE ${meetingStatus !== null} AND id IN (SELECT meeting_id FROM applied)
        AND status <> 'cancelled'
      RETURNING id
    )
    SELECT id::text, meeting_id::text FROM applied`;

  const row = rows[0];
  if (row) return { applied: true, botId: row.id, meetingId: row.meeting_id, status };
  if (isTerminal) {
    // `done` can overtake `call_ended`: the older event no longer applies, but the bot ended then.
    await db.$executeRaw`
      UPDATE bots SET ended_at = ${input.at}, updated_at = now()
      WHERE recall_bot_id = ${input.recallBotId} AND ended_at > ${input.at}
        AND status::text <> 'failed'`;
  }
  const exists = await db.bot.findUnique({
    where: { recallBotId: input.recallBotId },
    select: { id: true },
  });
  return { applied: false, reason: exists ? "stale" : "not_found" };
}
