import type { Bot, BotStatus, Meeting, PrismaClient } from "@zigznote/database";
import { ConflictError, isAppError, NotFoundError } from "@zigznote/shared";
import type { Clock } from "../lib/clock";
import { isUuid } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { getMeeting, normalizeMeetingUrl } from "../meetings";
import {
  applyBotStatus,
  isBotStatus,
  isTerminalBotStatus,
  meetingMoveForBot,
  type ApplyBotStatusResult,
} from "./botStatus";
import { RecallRequestError, type RecallBot, type RecallClient } from "./recallClient";
import * as store from "./store";

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

async function conflictFor(
  deps: Pick<BotServiceDeps, "db">,
  index: string,
  input: CreateBotInput,
): Promise<ConflictError> {
  const sameMeeting = new ConflictError(
    "This meeting already has an active bot; remove it before sending another one",
    { code: "BOT_ALREADY_ACTIVE", details: { meetingId: input.meetingId } },
  );
  if (index === "bots_one_active_per_meeting") return sameMeeting;
  // The link is shared with another meeting of the same organization: say which one.
  const other = await store.findActiveBotMeetingOnLink(deps.db, input);
  if (other === input.meetingId) return sameMeeting;
  return new ConflictError(
    "A bot is already in this call for another meeting of your organization with the same meeting link",
    {
      code: "BOT_ALREADY_ACTIVE_FOR_URL",
      details: { meetingId: input.meetingId, ...(other ? { conflictingMeetingId: other } : {}) },
    },
  );
}

/**
 * Marks a reservation that never got (or lost) its Recall bot as failed; it no longer blocks.
 * Only while it is still pending; its time never moves back (our clock against our clock).
 */
async function releaseReservation(
  deps: BotServiceDeps,
  botId: string,
  reason: string,
): Promise<void> {
  try {
    await store.writeBotStatus(deps.db, {
      guard: { botId, status: "pending" },
      status: "failed",
      at: deps.clock.now(),
      isStatusTimeMonotonic: true,
      source: "api",
      terminalReason: reason,
      meeting: null,
    });
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
 * does not have; BadGatewayError (RECALL_*) when Recall fails, with the reservation released;
 * ProviderNotConfiguredError (503) without RECALL_API_KEY, before anything is written.
 */
export async function createBot(deps: BotServiceDeps, input: CreateBotInput): Promise<Bot> {
  if (!isUuid(input.meetingId)) throw new NotFoundError("Meeting not found");
  // Without Recall nothing is reserved: a deployment without it leaves no failed bot behind.
  deps.recall.assertConfigured();
  const botName = input.botName?.trim() || deps.defaultBotName;
  const reservedAt = deps.clock.now();

  // 1. Reserve (see store.reserveBot for the lock it takes on the meeting).
  const reservation = await store.reserveBot(deps.db, {
    organizationId: input.organizationId,
    meetingId: input.meetingId,
    botName,
    at: reservedAt,
    source: "api",
  });
  if (!reservation.isReserved) {
    if (reservation.violatedIndex === null) throw new NotFoundError("Meeting not found");
    throw await conflictFor(deps, reservation.violatedIndex, input);
  }

  // 2. Call Recall, outside any transaction, with the canonical link (meetings store it so;
  //    rows from before that are canonicalized here, and refused if no longer a meeting link).
  let meetingUrl: string;
  try {
    meetingUrl = normalizeMeetingUrl(reservation.meetingUrl).url;
  } catch (error) {
    await releaseReservation(deps, reservation.botId, "meeting_url_not_supported");
    throw new ConflictError("The meeting's link is not a supported meeting link; update it", {
      code: "MEETING_URL_NOT_SUPPORTED",
      details: { meetingId: input.meetingId, reason: (error as Error).message },
    });
  }
  let recallBot: RecallBot;
  try {
    recallBot = await deps.recall.createBot({
      meetingUrl,
      botName,
      metadata: {
        meetingId: input.meetingId,
        organizationId: input.organizationId,
        botId: reservation.botId,
      },
      idempotencyKey: reservation.botId,
    });
  } catch (error) {
    const detail =
      error instanceof RecallRequestError
        ? `${error.code}: ${error.message}`
        : error instanceof Error
          ? error.message
          : String(error);
    await releaseReservation(
      deps,
      reservation.botId,
      `recall_create_failed: ${detail}`.slice(0, 500),
    );
    if (isAppError(error)) throw error;
    throw new RecallRequestError(
      "Recall is unavailable: the bot could not be created",
      "RECALL_UNAVAILABLE",
      null,
    );
  }

  // 3. Record Recall's id (only while the reservation is still ours), and move the meeting.
  const initial = initialStatus(recallBot, reservedAt);
  let recorded: store.WrittenBotStatus | null = null;
  let recordError: unknown;
  try {
    recorded = await store.writeBotStatus(deps.db, {
      guard: { botId: reservation.botId, status: "pending" },
      status: initial.status,
      recallBotId: recallBot.id,
      // Recall's clock from here on: later reports are ranked against it.
      at: initial.at,
      source: "create",
      meeting: meetingMoveForBot(initial.status),
    });
  } catch (error) {
    recordError = error;
  }
  if (!recorded) {
    await leaveBestEffort(deps, recallBot.id, "its reservation could not be recorded");
    await releaseReservation(
      deps,
      reservation.botId,
      `record_failed: Recall bot ${recallBot.id} was told to leave`,
    );
    if (recordError !== undefined) throw recordError as Error;
    throw new ConflictError(
      "The bot reservation was released while Recall was creating the bot; try again",
      { code: "BOT_RESERVATION_LOST", details: { meetingId: input.meetingId } },
    );
  }
  if (recorded.isMeetingDeleted) {
    // The meeting was deleted while Recall was creating its bot: the bot is tracked, send it home.
    await leaveBestEffort(deps, recallBot.id, "its meeting was deleted during creation");
  }
  return store.findBot(deps.db, reservation.botId);
}

/** The meeting's newest bot (the active one if any), or NotFoundError (BOT_NOT_FOUND). */
export async function getCurrentBot(
  deps: Pick<BotServiceDeps, "db">,
  input: MeetingBotInput,
): Promise<Bot> {
  await getMeeting(deps, input);
  // A bot can only be created once the previous one ended, so the newest is the active one.
  const bot = await store.findNewestBot(deps.db, input);
  if (!bot) throw new NotFoundError("This meeting has no bot", { code: "BOT_NOT_FOUND" });
  return bot;
}

/** Applies Recall's status changes (oldest first) through applyBotStatus. */
async function applyRecallStatuses(
  deps: Pick<BotServiceDeps, "db">,
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
 * Asks the meeting's active bot to leave. The bot stays active until Recall reports it left
 * (webhook, or the leave answer's own status changes): freeing the slot earlier would let a
 * second bot in while the first is still in the call. NotFoundError (BOT_NOT_ACTIVE) when no bot
 * is active; ConflictError (BOT_PENDING) while Recall is still creating it.
 */
export async function removeBot(deps: BotServiceDeps, input: MeetingBotInput): Promise<Bot> {
  await getMeeting(deps, input);
  const bot = await store.findNewestBot(deps.db, input);
  // A meeting that never had a bot has no active bot either: one answer for both.
  if (!bot || isTerminalBotStatus(bot.status)) {
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
  await syncBotStatus(deps, { recallBotId: bot.recallBotId }).catch((error: unknown) => {
    deps.logger.warn(
      { err: error, recallBotId: bot.recallBotId },
      "could not read the bot after leave",
    );
  });
  return store.findBot(deps.db, bot.id);
}

/**
 * Reads the bot from Recall and applies its status changes: for the cleanup job (bots whose
 * webhooks never came) and after commands. Returns what Recall reported.
 */
export async function syncBotStatus(
  deps: BotServiceDeps,
  input: { recallBotId: string },
): Promise<RecallBot> {
  const recallBot = await deps.recall.getBot(input.recallBotId);
  await applyRecallStatuses(deps, recallBot, "poll");
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
  const recallBotId = await store.findActiveRecallBotId(deps.db, meeting.id);
  if (recallBotId) await leaveBestEffort(deps, recallBotId, "its meeting was deleted");
}
