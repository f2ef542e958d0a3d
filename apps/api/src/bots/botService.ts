import { isUuid } from "../lib/ids";
import {
  uniqueViolationOf,
  type Bot,
  type BotStatus,
  type Db,
  type Meeting,
  type PrismaClient,
} from "@zigznote/database";
import { ConflictError, isAppError, NotFoundError } from "@zigznote/shared";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import {
  applyBotStatus,
  isBotStatus,
  isTerminalBotStatus,
  meetingStatusForBot,
  TERMINAL_BOT_STATUSES,
  type ApplyBotStatusResult,
} from "./botStatus";
import { getMeeting } from "../meetings";
import { RecallRequestError, type RecallBot, type RecallClient } from "./recallClient";

/**
 * Recall bots for meetings, at most one active per meeting and per (organization, normalized
 * link), even under concurrent requests. See project_docs/BOTS.md.
 *
 * The database decides: a bot row is reserved first (status `pending`), and two partial unique
 * indexes over active bots make every concurrent reservation but one fail. Only the winner calls
 * Recall, outside any transaction, with its row id as Idempotency-Key (a retried create cannot
 * make a second bot) and in the bot's metadata (a webhook can find its way back). If Recall fails,
 * the reservation is released (`failed`, with the reason). If Recall's bot id cannot be recorded,
 * that bot is told to leave and the reservation is released: no Recall bot is left untracked.
 */

export interface BotServiceDeps {
  db: PrismaClient;
  recall: RecallClient;
  logger: Logger;
  clock: Clock;
  /** Name shown in the call when the caller gives none (RECALL_BOT_NAME). */
  defaultBotName: string;
}

export interface CreateBotInput {
  organizationId: string;
  meetingId: string;
  botName?: string;
}

export interface MeetingBotInput {
  organizationId: string;
  meetingId: string;
}

interface ReservationRow {
  id: string;
  meeting_url: string;
}

/** The unique index a violation names (`""` when unknown), or undefined for other errors. */
function violatedIndex(error: unknown): string | undefined {
  const violation = uniqueViolationOf(error);
  return violation ? (violation.constraint ?? "") : undefined;
}

function historyEntry(status: BotStatus, at: Date, source: string, subCode?: string | null) {
  return JSON.stringify([
    { status, ...(subCode ? { subCode } : {}), at: at.toISOString(), source },
  ]);
}

async function conflictFor(db: Db, index: string, input: CreateBotInput): Promise<ConflictError> {
  const sameMeeting = new ConflictError(
    "This meeting already has an active bot; remove it before sending another one",
    { code: "BOT_ALREADY_ACTIVE", details: { meetingId: input.meetingId } },
  );
  if (index === "bots_one_active_per_meeting") return sameMeeting;
  // The link is shared with another meeting of the same organization: say which one.
  const rows = await db.$queryRaw<{ meeting_id: string }[]>`
    SELECT b.meeting_id::text FROM bots b
    JOIN meetings m ON m.id = ${input.meetingId}::uuid
    WHERE b.organization_id = ${input.organizationId}::uuid
      AND b.normalized_meeting_url = m.normalized_meeting_url
      AND b.status::text <> ALL(${TERMINAL_BOT_STATUSES as string[]}::text[])
    LIMIT 1`;
  const other = rows[0]?.meeting_id;
  if (other === input.meetingId) return sameMeeting;
  return new ConflictError(
    "A bot is already in this call for another meeting of your organization with the same meeting link",
    {
      code: "BOT_ALREADY_ACTIVE_FOR_URL",
      details: { meetingId: input.meetingId, ...(other ? { conflictingMeetingId: other } : {}) },
    },
  );
}

/** Marks a reservation that never got (or lost) its Recall bot as failed; it no longer blocks. */
async function releaseReservation(
  deps: BotServiceDeps,
  botId: string,
  reason: string,
): Promise<void> {
  const at = deps.clock.now();
  try {
    await deps.db.$executeRaw`
      UPDATE bots SET status = 'failed', terminal_reason = ${reason}, ended_at = ${at},
        last_status_at = GREATEST(last_status_at, ${at}),
        status_history = status_history || ${historyEntry("failed", at, "api")}::jsonb,
        updated_at = now()
      WHERE id = ${botId}::uuid AND status = 'pending'`;
  } catch (error) {
    // The row stays pending; the cleanup job releases pending reservations that are too old.
    deps.logger.error({ err: error, botId, reason }, "could not release a bot reservation");
  }
}

/** The newest status Recall reports for a fresh bot that we track (else `ready`), and when. */
function initialStatus(recallBot: RecallBot, fallbackAt: Date): { status: BotStatus; at: Date } {
  for (let i = recallBot.status_changes.length - 1; i >= 0; i -= 1) {
    const change = recallBot.status_changes[i]!;
    const at = new Date(change.created_at);
    if (
      isBotStatus(change.code) &&
      !isTerminalBotStatus(change.code) &&
      !Number.isNaN(at.getTime())
    ) {
      return { status: change.code, at };
    }
  }
  return { status: "ready", at: fallbackAt };
}

async function leaveBestEffort(
  deps: BotServiceDeps,
  recallBotId: string,
  why: string,
): Promise<void> {
  try {
    await deps.recall.leaveCall(recallBotId);
    deps.logger.warn({ recallBotId, why }, "told a Recall bot to leave");
  } catch (error) {
    deps.logger.error({ err: error, recallBotId, why }, "could not tell a Recall bot to leave");
  }
}

/**
 * Sends a bot to the meeting. ConflictError (BOT_ALREADY_ACTIVE, BOT_ALREADY_ACTIVE_FOR_URL) when
 * one is already active for the meeting or its link; NotFoundError for a meeting the organization
 * does not have; BadGatewayError (RECALL_*) when Recall fails, with the reservation released.
 */
export async function createBot(deps: BotServiceDeps, input: CreateBotInput): Promise<Bot> {
  if (!isUuid(input.meetingId)) throw new NotFoundError("Meeting not found");
  const botName = input.botName?.trim() || deps.defaultBotName;
  const reservedAt = deps.clock.now();

  // 1. Reserve. FOR KEY SHARE holds the meeting's link steady against a concurrent link change
  //    (updateMeeting locks the row FOR UPDATE), so the copied normalized link stays true. It is
  //    the weakest lock that does: a stronger one (FOR SHARE) would block status updates of the
  //    meeting (FOR NO KEY UPDATE) while they hold the bot row a waiting reservation checks its
  //    unique index against - a deadlock under concurrent requests.
  let reservation: ReservationRow;
  try {
    const rows = await deps.db.$queryRaw<ReservationRow[]>`
      WITH meeting AS (
        SELECT id, organization_id, meeting_url, normalized_meeting_url FROM meetings
        WHERE id = ${input.meetingId}::uuid AND organization_id = ${input.organizationId}::uuid
          AND deleted_at IS NULL
        FOR KEY SHARE
      ), reserved AS (
        INSERT INTO bots (meeting_id, organization_id, normalized_meeting_url, bot_name, status,
                          last_status_at, status_history)
        SELECT id, organization_id, normalized_meeting_url, ${botName}, 'pending', ${reservedAt},
               ${historyEntry("pending", reservedAt, "api")}::jsonb
        FROM meeting
        RETURNING id
      )
      SELECT reserved.id::text, meeting.meeting_url FROM reserved, meeting`;
    const row = rows[0];
    if (!row) throw new NotFoundError("Meeting not found");
    reservation = row;
  } catch (error) {
    const index = violatedIndex(error);
    if (index !== undefined) throw await conflictFor(deps.db, index, input);
    throw error;
  }

  // 2. Call Recall, outside any transaction.
  let recallBot: RecallBot;
  try {
    recallBot = await deps.recall.createBot({
      meetingUrl: reservation.meeting_url,
      botName,
      metadata: {
        meetingId: input.meetingId,
        organizationId: input.organizationId,
        botId: reservation.id,
      },
      idempotencyKey: reservation.id,
    });
  } catch (error) {
    const detail =
      error instanceof RecallRequestError
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error);
    await releaseReservation(deps, reservation.id, `recall_create_failed: ${detail}`.slice(0, 500));
    if (isAppError(error)) throw error;
    throw new RecallRequestError(
      "Recall is unavailable: the bot could not be created",
      "RECALL_UNAVAILABLE",
      null,
    );
  }

  // 3. Record Recall's id (only while the reservation is still ours), and move the meeting.
  const initial = initialStatus(recallBot, reservedAt);
  const meetingStatus = meetingStatusForBot(initial.status);
  let recorded: { id: string; meeting_deleted: boolean }[] = [];
  let recordError: unknown;
  try {
    recorded = await deps.db.$queryRaw<{ id: string; meeting_deleted: boolean }[]>`
      WITH recorded AS (
        UPDATE bots SET recall_bot_id = ${recallBot.id}, status = ${initial.status}::"BotStatus",
          last_status_at = ${initial.at},
          status_history = status_history || ${historyEntry(initial.status, initial.at, "create")}::jsonb,
          updated_at = now()
        WHERE id = ${reservation.id}::uuid AND status = 'pending'
        RETURNING id, meeting_id
      ), moved AS (
        UPDATE meetings SET status = ${meetingStatus}::"MeetingStatus", updated_at = now()
        WHERE ${meetingStatus !== null} AND id IN (SELECT meeting_id FROM recorded)
          AND status <> 'cancelled'
      )
      SELECT recorded.id::text, (m.deleted_at IS NOT NULL) AS meeting_deleted
      FROM recorded JOIN meetings m ON m.id = recorded.meeting_id`;
  } catch (error) {
    recordError = error;
  }
  const row = recorded[0];
  if (!row) {
    await leaveBestEffort(deps, recallBot.id, "its reservation could not be recorded");
    await releaseReservation(
      deps,
      reservation.id,
      `record_failed: Recall bot ${recallBot.id} was told to leave`,
    );
    if (recordError !== undefined) throw recordError as Error;
    throw new ConflictError(
      "The bot reservation was released while Recall was creating the bot; try again",
      { code: "BOT_RESERVATION_LOST", details: { meetingId: input.meetingId } },
    );
  }
  if (row.meeting_deleted) {
    // The meeting was deleted while Recall was creating its bot: the bot is tracked, send it home.
    await leaveBestEffort(deps, recallBot.id, "its meeting was deleted during creation");
  }
  return deps.db.bot.findUniqueOrThrow({ where: { id: reservation.id } });
}

/** The meeting's newest bot (the active one if any), or NotFoundError (BOT_NOT_FOUND). */
export async function getCurrentBot(
  deps: Pick<BotServiceDeps, "db">,
  input: MeetingBotInput,
): Promise<Bot> {
  const { organizationId, meetingId } = input;
  await getMeeting(deps, input);
  // A bot can only be created once the previous one ended, so the newest is the active one.
  const bot = await deps.db.bot.findFirst({
    where: { meetingId, organizationId },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
  if (!bot) throw new NotFoundError("This meeting has no bot", { code: "BOT_NOT_FOUND" });
  return bot;
}

/** Applies Recall's status changes (oldest first) through applyBotStatus. */
async function applyRecallStatuses(
  db: Db,
  recallBot: RecallBot,
  source: string,
): Promise<ApplyBotStatusResult[]> {
  const results: ApplyBotStatusResult[] = [];
  for (const change of recallBot.status_changes) {
    const at = new Date(change.created_at);
    if (Number.isNaN(at.getTime())) continue;
    results.push(
      await applyBotStatus(db, {
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
 * Asks the meeting's active bot to leave. The bot stays active until Recall reports it left
 * (webhook, or the leave answer's own status changes): freeing the slot earlier would let a
 * second bot in while the first is still in the call. NotFoundError (BOT_NOT_ACTIVE) when no bot
 * is active; ConflictError (BOT_PENDING) while Recall is still creating it.
 */
export async function removeBot(deps: BotServiceDeps, input: MeetingBotInput): Promise<Bot> {
  const bot = await getCurrentBot(deps, input);
  if (isTerminalBotStatus(bot.status)) {
    throw new NotFoundError("This meeting has no active bot", { code: "BOT_NOT_ACTIVE" });
  }
  if (bot.recallBotId === null) {
    throw new ConflictError("The bot is still being created; try again in a moment", {
      code: "BOT_PENDING",
      details: { meetingId: input.meetingId },
    });
  }
  try {
    await deps.recall.leaveCall(bot.recallBotId);
  } catch (error) {
    // Recall refuses commands to a bot that already left; its final status is what counts.
    if (!(error instanceof RecallRequestError && error.code === "RECALL_REJECTED")) throw error;
    deps.logger.info({ recallBotId: bot.recallBotId, err: error }, "bot had already left");
  }
  await syncBotStatus(deps, bot.recallBotId).catch((error: unknown) => {
    deps.logger.warn(
      { err: error, recallBotId: bot.recallBotId },
      "could not read the bot after leave",
    );
  });
  return deps.db.bot.findUniqueOrThrow({ where: { id: bot.id } });
}

/**
 * Reads the bot from Recall and applies its status changes: for the cleanup job (bots whose
 * webhooks never came) and after commands. Returns what Recall reported.
 */
export async function syncBotStatus(deps: BotServiceDeps, recallBotId: string): Promise<RecallBot> {
  const recallBot = await deps.recall.getBot(recallBotId);
  await applyRecallStatuses(deps.db, recallBot, "poll");
  return recallBot;
}

/**
 * After a meeting was deleted: asks its active bot, if any, to leave (best effort, logged). A
 * pending bot has no Recall id yet: createBot sees the deletion when it records the id.
 */
export async function releaseBotOfDeletedMeeting(
  deps: BotServiceDeps,
  meeting: Pick<Meeting, "id">,
): Promise<void> {
  const activeBot = await deps.db.bot.findFirst({
    where: { meetingId: meeting.id, status: { notIn: [...TERMINAL_BOT_STATUSES] } },
    select: { recallBotId: true },
  });
  if (activeBot?.recallBotId) {
    await leaveBestEffort(deps, activeBot.recallBotId, "its meeting was deleted");
  }
}
