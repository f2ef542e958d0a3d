/**
 * Recall's bot events -> our bots, meetings and recordings.
 *
 * Two shapes arrive, both through Svix (`POST /webhooks/recall`, type in the body's `event`):
 * - legacy `bot.status_change`: `{ event, data: { bot_id, status: { code, sub_code, created_at,
 *   message } } }`;
 * - per-status `bot.<code>` (and `recording.done`): `{ event, data: { data: { code, sub_code,
 *   updated_at }, bot: { id, metadata }, recording?: { id } } }`.
 *
 * Statuses go through `applyBotStatus` (ranked, so late and repeated events never move a bot
 * back). A bot we cannot find yet is usually one whose create answer is still being recorded:
 * the delivery fails (5xx, nothing recorded) and Recall retries. The exceptions are a bot whose
 * `metadata.botId` names a reservation we released (`failed`): Recall made it although we gave
 * up on it, so it is told to leave (after commit) and the event is acknowledged; and a bot whose
 * metadata names no bot of ours (made elsewhere in the workspace), which is only acknowledged.
 * The legacy shape carries no metadata: for a Recall id we have no row for, the bot is read from
 * Recall before the claim transaction, and its metadata decides the same way.
 *
 * A ready recording (`done`, `recording.done`) queues one import per Recall bot in this
 * transaction (a redelivery queues nothing) and starts it after commit; the periodic job
 * retries what fails.
 */
import { isTerminalBotStatus, type Prisma, type PrismaClient } from "@zigznote/database";
import { ProviderNotConfiguredError } from "@zigznote/shared";
import { z } from "zod";
import { isUuid } from "../lib/ids";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { ProviderCalls } from "../providerCalls";
import {
  enqueueRecordingImport,
  processRecordingImport,
  type RecordingImportDeps,
} from "../recordings";
import type {
  PreparedHandler,
  WebhookEvent,
  WebhookHandler,
  WebhookHandlerHooks,
  WebhookRegistry,
} from "../webhooks";
import { applyBotStatus, isBotStatus } from "./botStatus";
import { makeBotLeave } from "./leave";
import { queueBotLeaves } from "./leaveCalls";
import { RecallRequestError, type RecallClient } from "./recallClient";
import * as store from "./store";

/** What the Recall handlers need besides the transaction. */
export interface RecallHandlerDeps {
  /** Reads outside the claim transaction (the legacy event's preparation), and leaves after it. */
  db: PrismaClient;
  logger: Logger;
  recall: RecallClient;
  clock: Clock;
  /** The provider-call queue: a deleted meeting's bot that reports in is sent home there. */
  calls: Pick<ProviderCalls, "enqueue">;
  recordingImports: RecordingImportDeps;
}

type RecallHooks = WebhookHandlerHooks & { deps: RecallHandlerDeps };
type RecallHandler = (
  event: WebhookEvent,
  tx: Prisma.TransactionClient,
  hooks: RecallHooks,
) => Promise<void>;

const timestamp = z.string().refine((value) => !Number.isNaN(Date.parse(value)), "not a date");

const LegacyStatusEvent = z.object({
  event: z.literal("bot.status_change"),
  data: z.object({
    bot_id: z.string().min(1),
    status: z.object({
      code: z.string().min(1),
      sub_code: z.string().nullish(),
      message: z.string().nullish(),
      created_at: timestamp,
    }),
  }),
});

const BotEvent = z.object({
  event: z.string(),
  data: z.object({
    data: z.object({
      code: z.string().min(1),
      sub_code: z.string().nullish(),
      updated_at: timestamp,
    }),
    bot: z.object({
      id: z.string().min(1),
      metadata: z.record(z.string(), z.unknown()).nullish(),
    }),
    recording: z.looseObject({ id: z.string() }).nullish(),
  }),
});

/** The bot status codes Recall sends per-status events for (`bot.<code>`) that we track. */
export const RECALL_BOT_STATUS_EVENTS = [
  "bot.ready",
  "bot.joining_call",
  "bot.in_waiting_room",
  "bot.in_call_not_recording",
  "bot.recording_permission_allowed",
  "bot.recording_permission_denied",
  "bot.in_call_recording",
  "bot.call_ended",
  "bot.done",
  "bot.fatal",
  "bot.analysis_done",
  "bot.analysis_failed",
  "bot.media_expired",
] as const;

interface RecallStatus {
  recallBotId: string;
  code: string;
  subCode: string | null;
  at: Date;
  /** The bot's metadata; undefined when the event shape does not carry it (legacy). */
  metadata: Record<string, unknown> | null | undefined;
}

/** Thrown to fail a delivery so that Recall retries it later. */
export class RecallBotNotRecordedError extends Error {
  constructor(recallBotId: string) {
    super(
      `No bot has Recall id ${recallBotId} yet (its create answer may still be being recorded); Recall will retry`,
    );
    this.name = "RecallBotNotRecordedError";
  }
}

function readLegacy(event: WebhookEvent): RecallStatus {
  const { data } = LegacyStatusEvent.parse(event.payload);
  return {
    recallBotId: data.bot_id,
    code: data.status.code,
    subCode: data.status.sub_code ?? null,
    at: new Date(data.status.created_at),
    metadata: undefined,
  };
}

function readBotEvent(event: WebhookEvent): RecallStatus {
  const { data } = BotEvent.parse(event.payload);
  return {
    recallBotId: data.bot.id,
    code: data.data.code,
    subCode: data.data.sub_code ?? null,
    at: new Date(data.data.updated_at),
    metadata: data.bot.metadata ?? null,
  };
}

/**
 * A Recall bot with no row of ours: fail the delivery (Recall retries) unless its metadata
 * shows it is not, or no longer, ours. A released reservation's bot is told to leave.
 */
async function handleUntrackedBot(
  tx: Prisma.TransactionClient,
  hooks: RecallHooks,
  status: RecallStatus,
): Promise<void> {
  // Legacy, and the bot had a row when the event was prepared: retried, prepared again.
  if (status.metadata === undefined) throw new RecallBotNotRecordedError(status.recallBotId);
  const botId = status.metadata?.botId;
  const logger = hooks.deps.logger;
  if (typeof botId !== "string" || !isUuid(botId)) {
    logger.warn({ recallBotId: status.recallBotId }, "recall event for a bot we did not create");
    return;
  }
  const botStatus = await store.findBotStatus(tx, botId);
  if (!botStatus) {
    logger.warn({ recallBotId: status.recallBotId, botId }, "recall event names no bot of ours");
    return;
  }
  if (botStatus !== "failed") throw new RecallBotNotRecordedError(status.recallBotId);
  logger.warn(
    { recallBotId: status.recallBotId, botId, code: status.code },
    "recall bot of a released reservation reported in",
  );
  if (isBotStatus(status.code) && isTerminalBotStatus(status.code)) return;
  sendHomeAfterCommit(hooks, status.recallBotId, "its reservation was released");
}

/**
 * After the commit, makes the Recall bot of a released reservation leave (leave.ts: a refusal is
 * judged by the bot's state at Recall). It has no active row of ours to queue a leave call for;
 * a bot not in the call yet is sent home by its next event (it reports its admission), as is
 * one whose leave failed (the processor logs it).
 */
function sendHomeAfterCommit(hooks: RecallHooks, recallBotId: string, why: string): void {
  const { deps } = hooks;
  hooks.afterCommit(async () => {
    const left = await makeBotLeave(
      { db: deps.db, recall: deps.recall, logger: deps.logger, clock: deps.clock },
      recallBotId,
    );
    deps.logger.warn({ recallBotId, why, outcome: left.outcome }, "told a Recall bot to leave");
  });
}

/** Queues the copy of the bot's recording (once per Recall bot) and starts it after commit. */
async function queueRecordingImport(
  event: WebhookEvent,
  tx: Prisma.TransactionClient,
  hooks: RecallHooks,
  recallBotId: string,
): Promise<void> {
  const bot = await store.findBotForRecording(tx, recallBotId);
  if (!bot) throw new RecallBotNotRecordedError(recallBotId);
  if (bot.meeting.deletedAt) {
    hooks.deps.logger.info(
      { recallBotId, meetingId: bot.meetingId },
      "recording of a deleted meeting not copied",
    );
    return;
  }
  // One Recall bot records one recording here: the bot id is the import's identity, so
  // `bot.done` and `recording.done` for the same call copy it once.
  const importId = await enqueueRecordingImport(
    { db: tx },
    {
      organizationId: bot.organizationId,
      meetingId: bot.meetingId,
      botId: bot.id,
      externalId: recallBotId,
      now: event.receivedAt,
    },
  );
  if (importId) {
    hooks.afterCommit(async () => {
      await processRecordingImport(hooks.deps.recordingImports, { importId });
    });
  }
}

async function applyStatus(
  event: WebhookEvent,
  tx: Prisma.TransactionClient,
  hooks: RecallHooks,
  status: RecallStatus,
): Promise<void> {
  const result = await applyBotStatus(
    { db: tx },
    {
      recallBotId: status.recallBotId,
      status: status.code,
      subCode: status.subCode,
      at: status.at,
      source: "webhook",
    },
  );
  if (!result.applied && result.reason === "not_found") {
    await handleUntrackedBot(tx, hooks, status);
    return;
  }
  if (result.applied && result.isMeetingDeleted && !isTerminalBotStatus(result.status)) {
    // The customer deleted the meeting. Its bot's leave was queued then (or was not, if that
    // failed); a bot still joining could not leave and its call waits out a backoff. A bot that
    // reports in is sent home now: the leave is queued, or made due at once, in this transaction.
    const bot = await tx.bot.findUniqueOrThrow({
      where: { id: result.botId },
      select: { organizationId: true },
    });
    await queueBotLeaves(
      { db: tx, calls: hooks.deps.calls },
      {
        organizationId: bot.organizationId,
        botIds: [result.botId],
        reason: "meeting_deleted",
        isDueNow: true,
      },
    );
  }
  if (status.code === "done" && (result.applied || result.reason === "stale")) {
    await queueRecordingImport(event, tx, hooks, status.recallBotId);
  }
}

/**
 * The metadata of a Recall bot we have no row for, read from Recall; null when the bot cannot be
 * ours: Recall does not know it, or Recall is not configured here (then no bot is created either).
 */
async function recallMetadataOf(
  recall: RecallClient,
  recallBotId: string,
): Promise<Record<string, unknown> | null> {
  try {
    return (await recall.getBot(recallBotId)).metadata ?? null;
  } catch (error) {
    if (error instanceof RecallRequestError && error.code === "RECALL_NOT_FOUND") return null;
    if (error instanceof ProviderNotConfiguredError) return null;
    throw error;
  }
}

/**
 * Legacy `bot.status_change`. Its shape has no metadata, which is what tells a bot whose create
 * answer is still being recorded (fail, Recall retries) from one that is not ours (acknowledge):
 * failing every event of a foreign bot made Recall retry it for days, an error each time. So a
 * Recall id we have no row for is looked up at Recall first, outside any transaction (Recall down:
 * 5xx, retried); a bot we know needs no call.
 */
function legacyStatusChange(deps: RecallHandlerDeps): PreparedHandler<unknown, RecallStatus> {
  return {
    async prepare(event) {
      const status = readLegacy(event);
      if ((await store.findBotIdByRecallId(deps.db, status.recallBotId)) !== null) return status;
      return { ...status, metadata: await recallMetadataOf(deps.recall, status.recallBotId) };
    },
    handle: (event, tx, hooks, status) => applyStatus(event, tx, { ...hooks, deps }, status),
  };
}

const onBotStatusEvent: RecallHandler = (event, tx, hooks) =>
  applyStatus(event, tx, hooks, readBotEvent(event));

const onRecordingDone: RecallHandler = async (event, tx, hooks) => {
  const status = readBotEvent(event);
  if ((await store.findBotIdByRecallId(tx, status.recallBotId)) === null) {
    await handleUntrackedBot(tx, hooks, status);
    return;
  }
  await queueRecordingImport(event, tx, hooks, status.recallBotId);
};

/** Registers the Recall handlers: legacy and per-status bot events, and `recording.done`. */
export function registerRecallHandlers(registry: WebhookRegistry, deps: RecallHandlerDeps): void {
  const withDeps =
    (handler: RecallHandler): WebhookHandler =>
    (event, tx, hooks) =>
      handler(event, tx, { ...hooks, deps });
  registry.register("recall", "bot.status_change", legacyStatusChange(deps));
  for (const type of RECALL_BOT_STATUS_EVENTS) {
    registry.register("recall", type, withDeps(onBotStatusEvent));
  }
  registry.register("recall", "recording.done", withDeps(onRecordingDone));
}
