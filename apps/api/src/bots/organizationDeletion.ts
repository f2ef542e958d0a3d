import type { Db } from "@zigznote/database";
import {
  PermanentProviderCallError,
  type ProviderCallExecutor,
  type ProviderCalls,
} from "../providerCalls";
import type { BotServiceDeps } from "./botService";
import { syncBotStatus } from "./botService";
import { isTerminalBotStatus } from "./botStatus";
import { RecallRequestError } from "./recallClient";
import * as store from "./store";

/**
 * A deleted organization records no more calls (BOTS.md, "Deleting an organization"): the
 * transaction that records the deletion queues one `recall.bot.leave` provider call per active
 * bot (`provider_calls`, unique per bot), made after the commit and retried by the
 * `retryProviderCalls` job until Recall has the bot out of the call. A reservation still waiting
 * for Recall's answer is queued too: its call waits (retried) until the bot has its Recall id, or
 * ends once the reservation is released. No new bot can be sent: the deleted organization's
 * credentials are refused, and the write guard in the reservation's transaction finds no live
 * organization (404).
 */

export const LEAVE_CALL = "recall.bot.leave";

/** Queues, in `db` (the deletion's transaction), a leave call for each active bot. */
export async function queueBotLeaves(
  deps: { db: Db; calls: Pick<ProviderCalls, "enqueue"> },
  input: { organizationId: string },
): Promise<number> {
  const { organizationId } = input;
  const botIds = await store.findActiveBotIdsOfOrganization(deps.db, organizationId);
  return deps.calls.enqueue(
    deps.db,
    botIds.map((botId) => ({
      organizationId,
      kind: LEAVE_CALL,
      target: botId,
      reason: "organization_deleted",
    })),
  );
}

/**
 * Tells the call's bot to leave (Recall's `leave_call`, a new idempotency key per attempt),
 * then reads the bot back so its end is recorded without waiting for the webhook. A bot that
 * ended meanwhile, or that Recall says already left, is done as well.
 */
export function leaveCallExecutor(deps: BotServiceDeps): ProviderCallExecutor {
  return async (call) => {
    const bot = await deps.db.bot.findUnique({ where: { id: call.target } });
    if (!bot) return "bot_gone";
    if (isTerminalBotStatus(bot.status)) return "already_ended";
    if (bot.recallBotId === null) {
      // Recall is creating it (or its creator died; the stuck-bot job releases the reservation).
      throw new Error("the bot is still being created at Recall: tried again later");
    }
    const recallBotId = bot.recallBotId;
    try {
      deps.recall.assertConfigured();
    } catch (error) {
      throw new PermanentProviderCallError("Recall is not configured (RECALL_API_KEY)", {
        cause: error,
      });
    }
    try {
      await deps.recall.leaveCall(recallBotId);
    } catch (error) {
      // Recall refuses commands to a bot that already left (400) or that it no longer has.
      if (
        error instanceof RecallRequestError &&
        (error.code === "RECALL_NOT_FOUND" ||
          (error.code === "RECALL_REJECTED" && error.recallStatus === 400))
      ) {
        return "already_left";
      }
      throw error;
    }
    await syncBotStatus(deps, { recallBotId }).catch((error: unknown) => {
      deps.logger.warn(
        { err: error, recallBotId },
        "could not read the bot after leave; its webhook records the end",
      );
    });
    return "left";
  };
}
