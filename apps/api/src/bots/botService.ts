import type { Bot, BotStatus, Meeting, PrismaClient } from "@zigznote/database";
import { ConflictError, isAppError, NotFoundError } from "@zigznote/shared";
import type { WriteGuard } from "../http/auth";
import { transaction } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import { isUuid } from "../lib/ids";
import type { Logger } from "../lib/logger";
import { storableExcerpt } from "../lib/text";
import { getMeeting, normalizeMeetingUrl } from "../meetings";
import { isBotStatus, isTerminalBotStatus, meetingMoveForBot } from "./botStatus";
import type { ProviderCalls } from "../providerCalls";
import { makeBotLeave } from "./leave";
import { queueBotLeaves } from "./leaveCalls";
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
  /**
   * Billing's write guard, run in the reservation's transaction (the composition root wires it;
   * without it nothing is checked).
   */
  guardWrite?: WriteGuard;
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

/** Carries a refused reservation out of its transaction, which it rolls back. */
class ReservationRefused extends Error {
  constructor(readonly reservation: store.BotReservation) {
    super("bot reservation refused");
  }
}

/**
 * Reserves the bot row within the plan's limits, in one transaction: the meeting is locked (FOR
 * KEY SHARE, as store.reserveBot does), then billing's guard locks the organization row and
 * decides, then the bot row is inserted. The order matters twice. The meeting before the
 * organization: a recording's deletion takes them in that order (its violation re-check locks
 * the organization). The guard before the insert: inserting a row that references the
 * organization takes FOR KEY SHARE on it, and the guard's exclusive lock after that would be an
 * upgrade, which can deadlock against a transaction that updated the organization row and then
 * locks it FOR UPDATE. A refusal rolls everything back.
 */
async function reserveWithinLimits(
  deps: Pick<BotServiceDeps, "db" | "guardWrite">,
  input: store.BotMeetingKey & { botName: string; at: Date; source: string },
): Promise<store.BotReservation> {
  try {
    return await transaction(deps.db, async (tx) => {
      if (!(await store.lockMeetingForBot(tx, input))) {
        throw new ReservationRefused({ isReserved: false, violatedIndex: null });
      }
      await deps.guardWrite?.(tx, {
        organizationId: input.organizationId,
        action: "bot.create",
        now: input.at,
      });
      const reservation = await store.reserveBot(tx, input);
      if (!reservation.isReserved) throw new ReservationRefused(reservation);
      return reservation;
    });
  } catch (error) {
    if (error instanceof ReservationRefused) return error.reservation;
    throw error;
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

  // 1. Reserve, within the plan's limits.
  const reservation = await reserveWithinLimits(deps, {
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
      storableExcerpt(`recall_create_failed: ${detail}`, 500),
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

/**
 * Asks the meeting's active bot to leave. The bot stays active until Recall reports it left
 * (webhook, or the leave answer's own status changes): freeing the slot earlier would let a
 * second bot in while the first is still in the call. A bot Recall refuses to command is read
 * back first (leave.ts): ended, it is shown ended; a scheduled bot not dispatched yet is deleted
 * at Recall. NotFoundError (BOT_NOT_ACTIVE) when no bot is active; ConflictError (BOT_PENDING)
 * while Recall is still creating it, (BOT_NOT_IN_CALL_YET) while it is joining: Recall cannot
 * make it leave before it is in the call, and answering success would hide a bot that records.
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
  const left = await makeBotLeave(deps, bot.recallBotId);
  if (left.outcome === "not_in_call_yet") {
    throw new ConflictError(
      "The bot is still joining the call, and Recall cannot make a bot leave before it is in: try again in a moment",
      {
        code: "BOT_NOT_IN_CALL_YET",
        details: { meetingId: input.meetingId, botStatus: left.recallStatus ?? bot.status },
      },
    );
  }
  return store.findBot(deps.db, bot.id);
}

/**
 * After a meeting was deleted: queues the leave of its active bot, if any (leaveCalls.ts, reason
 * `meeting_deleted`), made at once and retried until the bot is out of the call: a bot still
 * joining would record the deleted meeting's call once admitted. A reservation still waiting for
 * its Recall id is queued too (its call waits for the id). Its own active status webhooks make a
 * leave waiting out its backoff due at once (recallWebhooks.ts).
 */
export async function releaseBotOfDeletedMeeting(
  deps: { db: PrismaClient; calls: Pick<ProviderCalls, "enqueue"> },
  meeting: Pick<Meeting, "id" | "organizationId">,
): Promise<void> {
  const botId = await store.findActiveBotIdOfMeeting(deps.db, meeting.id);
  if (botId === null) return;
  await queueBotLeaves(deps, {
    organizationId: meeting.organizationId,
    botIds: [botId],
    reason: "meeting_deleted",
  });
}
