import type { Db } from "@zigznote/database";
import {
  PermanentProviderCallError,
  type ProviderCallExecutor,
  type ProviderCalls,
} from "../providerCalls";
import { isTerminalBotStatus } from "./botStatus";
import { makeBotLeave, type LeaveDeps } from "./leave";

/**
 * A bot's leave as a durable provider call (BOTS.md, "Making a bot leave"): for every path that
 * makes a bot leave and cannot wait for it (a job, a webhook handler, a deletion). The call
 * (`provider_calls`, kind `recall.bot.leave`, target our bot id, one per bot ever) is made after
 * the commit that queued it and retried by the `retryProviderCalls` job with backoff, one worker
 * at a time across instances, until Recall has the bot out of the call, has deleted it before it
 * was dispatched, or has ended it. A bot still joining is not out: it records once admitted.
 */

export const LEAVE_CALL = "recall.bot.leave";

/** Why a bot was sent home (the call's `reason`). */
export type LeaveReason = "organization_deleted" | "meeting_deleted" | "stuck_bot";

/**
 * Queues, in `db` (the caller's transaction, or on its own), the leave of each bot; made after
 * the commit. With `isDueNow`, a leave already queued and waiting out its backoff is made now
 * (the bot reported itself in the call). Returns how many were queued or made due.
 */
export function queueBotLeaves(
  deps: { db: Db; calls: Pick<ProviderCalls, "enqueue"> },
  input: {
    organizationId: string;
    botIds: string[];
    reason: LeaveReason;
    isDueNow?: boolean;
  },
): Promise<number> {
  return deps.calls.enqueue(
    deps.db,
    input.botIds.map((botId) => ({
      organizationId: input.organizationId,
      kind: LEAVE_CALL,
      target: botId,
      reason: input.reason,
    })),
    { isDueNow: input.isDueNow },
  );
}

/** The provider call's result for each way the bot was sent home. */
const RESULTS = { asked: "left", ended: "already_left", deleted: "deleted", gone: "gone" } as const;

/**
 * Makes the call's bot leave through `makeBotLeave` (leave.ts): a refusal is judged by the
 * bot's state at Recall. Ended, or deleted before it was dispatched, is done; a bot still joining
 * (or in the waiting room) is not, since it would record once admitted: the call is retried with
 * backoff until it is in the call and can leave. A reservation still waiting for its Recall id is
 * retried too, until it has one (or is released).
 */
export function leaveCallExecutor(deps: LeaveDeps): ProviderCallExecutor {
  return async (call) => {
    const bot = await deps.db.bot.findUnique({ where: { id: call.target } });
    if (!bot) return "bot_gone";
    if (isTerminalBotStatus(bot.status)) return "already_ended";
    if (bot.recallBotId === null) {
      // Recall is creating it (or its creator died; the stuck-bot job releases the reservation).
      throw new Error("the bot is still being created at Recall: tried again later");
    }
    try {
      deps.recall.assertConfigured();
    } catch (error) {
      throw new PermanentProviderCallError("Recall is not configured (RECALL_API_KEY)", {
        cause: error,
      });
    }
    const left = await makeBotLeave(deps, bot.recallBotId);
    if (left.outcome === "not_in_call_yet") {
      throw new Error(
        `the bot is not in the call yet (Recall shows ${left.recallStatus ?? "no status"}) and cannot leave before it is: tried again later`,
      );
    }
    return RESULTS[left.outcome];
  };
}
