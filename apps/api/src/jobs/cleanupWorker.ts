import { Prisma, type BotStatus } from "@zigznote/database";
import pLimit from "p-limit";
import { checkPlanViolations } from "../billing/violations";
import type { AppContext } from "../context";
import { activeBotSql, applyBotStatus, isBotStatus } from "../services/botStatus";
import { RecallRequestError, type RecallBot, type RecallClient } from "../services/recallService";
import type { JobResult } from "./runner";

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Meetings soft-deleted more than STORAGE_PURGE_AFTER_DAYS ago lose their stored objects: the
 * files first, then, in one transaction per batch, the rows and the meeting's `purgedAt`. The
 * rows are the list of what remains to delete, so a failure anywhere is finished by the next run
 * and no file is ever left without a row. A meeting whose file could not be deleted keeps its
 * rows and is retried next run. The organizations that lost objects get their plan violations
 * re-checked afterwards.
 */
export async function cleanupOrphanedStorage(ctx: AppContext, now: Date): Promise<JobResult> {
  const cutoff = new Date(now.getTime() - ctx.config.STORAGE_PURGE_AFTER_DAYS * DAY_MS);
  const limit = pLimit(ctx.config.JOB_CONCURRENCY);
  const failedMeetings = new Set<string>();
  let purgedMeetings = 0;
  let deletedObjects = 0;
  let freedBytes = 0n;
  const affectedOrganizations = new Set<string>();

  for (;;) {
    const meetings = await ctx.db.meeting.findMany({
      where: { deletedAt: { lt: cutoff }, purgedAt: null, id: { notIn: [...failedMeetings] } },
      select: { id: true },
      orderBy: { deletedAt: "asc" },
      take: ctx.config.JOB_BATCH_SIZE,
    });
    if (meetings.length === 0) break;
    const meetingIds = meetings.map((meeting) => meeting.id);
    const objects = await ctx.db.storageObject.findMany({
      where: { meetingId: { in: meetingIds } },
      select: { id: true, key: true, meetingId: true, organizationId: true, sizeBytes: true },
    });

    const results = await Promise.allSettled(
      objects.map((object) => limit(() => ctx.storage.delete(object.key))),
    );
    const deleted = objects.filter((object, index) => {
      if (results[index]!.status === "fulfilled") return true;
      failedMeetings.add(object.meetingId);
      ctx.logger.warn(
        { err: (results[index] as PromiseRejectedResult).reason, key: object.key },
        "could not delete a stored object; retrying next run",
      );
      return false;
    });
    const purgeable = meetingIds.filter((id) => !failedMeetings.has(id));

    await ctx.db.$transaction([
      ctx.db.storageObject.deleteMany({
        where: { id: { in: deleted.map((object) => object.id) } },
      }),
      ctx.db.meeting.updateMany({
        where: { id: { in: purgeable }, purgedAt: null },
        data: { purgedAt: now },
      }),
    ]);
    purgedMeetings += purgeable.length;
    deletedObjects += deleted.length;
    freedBytes += deleted.reduce((sum, object) => sum + object.sizeBytes, 0n);
    for (const object of deleted) affectedOrganizations.add(object.organizationId);
  }

  // Freed storage may resolve storage violations. Each organization is re-checked in its own
  // transaction after the deletions committed (not inside the batch's: one organization's failed
  // check must not roll back rows whose files are already gone); a failure is logged and left to
  // the hourly re-check of recorded violations.
  let recheckFailures = 0;
  for (const organizationId of [...affectedOrganizations].sort()) {
    try {
      await checkPlanViolations(ctx.db, organizationId, now, ctx.billing.settings);
    } catch (error) {
      recheckFailures += 1;
      ctx.logger.error({ err: error, organizationId }, "plan violation re-check failed");
    }
  }
  if (affectedOrganizations.size > 0) await ctx.billing.deliverNotifications();

  return {
    rowsAffected: purgedMeetings,
    summary: {
      deletedObjects,
      freedBytes: freedBytes.toString(),
      failedMeetings: failedMeetings.size,
      recheckedOrganizations: affectedOrganizations.size,
      recheckFailures,
    },
  };
}

export interface OrphanedBotsResult extends JobResult {
  summary: {
    timedOut: number;
    releasedReservations: number;
    synced: number;
    stillRecording: number;
    changedMeanwhile: number;
    recallErrors: number;
  };
}

interface StuckBot {
  id: string;
  recall_bot_id: string | null;
  status: BotStatus;
  last_status_at: Date;
}

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
 * webhook or a sync that landed since wins. Also moves the meeting. Returns whether it applied.
 */
async function endStuckBot(
  ctx: AppContext,
  bot: StuckBot,
  now: Date,
  reason: string,
  status: BotStatus,
): Promise<boolean> {
  const history = JSON.stringify({
    status,
    subCode: "zigznote_timeout",
    at: now.toISOString(),
    source: "cleanup",
  });
  const meetingStatus = PRE_RECORDING.includes(bot.status) ? "failed" : "processing";
  const rows = await ctx.db.$queryRaw<{ id: string }[]>`
    WITH ended AS (
      UPDATE bots SET status = ${status}::"BotStatus", sub_code = 'zigznote_timeout',
             terminal_reason = ${reason}, ended_at = COALESCE(ended_at, ${now}),
             last_status_at = ${now},
             status_history = status_history || jsonb_build_array(${history}::jsonb),
             updated_at = now()
       WHERE id = ${bot.id}::uuid AND status = ${bot.status}::"BotStatus"
         AND last_status_at = ${bot.last_status_at}
      RETURNING id, meeting_id
    ), moved AS (
      UPDATE meetings SET status = ${meetingStatus}::"MeetingStatus", updated_at = now()
       WHERE id IN (SELECT meeting_id FROM ended) AND status NOT IN ('cancelled', 'completed')
      RETURNING id
    )
    SELECT id::text FROM ended`;
  return rows.length > 0;
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
  ctx: AppContext,
  recall: RecallClient,
  now: Date,
): Promise<OrphanedBotsResult> {
  const stuckBefore = new Date(now.getTime() - ctx.config.STUCK_BOT_AFTER_MINUTES * 60_000);
  const minutes = ctx.config.STUCK_BOT_AFTER_MINUTES;
  const limit = pLimit(ctx.config.JOB_CONCURRENCY);
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
        ctx,
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
        ctx.logger.warn(
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
      const result = await applyBotStatus(ctx.db, {
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
      ctx,
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
        ctx.logger.warn(
          { err: error, botId: bot.id },
          "ended a stuck bot but Recall refused leave_call",
        );
      });
    }
  };

  for (;;) {
    const cursor: { at: Date; id: string } | null = after;
    const batch: StuckBot[] = await ctx.db.$queryRaw<StuckBot[]>`
      SELECT id::text, recall_bot_id, status, last_status_at FROM bots
       WHERE ${activeBotSql} AND last_status_at < ${stuckBefore}
         ${cursor ? Prisma.sql`AND (last_status_at, id) > (${cursor.at}, ${cursor.id}::uuid)` : Prisma.empty}
       ORDER BY last_status_at, id
       LIMIT ${ctx.config.JOB_BATCH_SIZE}`;
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
