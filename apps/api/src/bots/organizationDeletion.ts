import type { Db } from "@zigznote/database";
import {
  PermanentProviderCallError,
  type ProviderCallExecutor,
  type ProviderCalls,
} from "../providerCalls";
import type { BotServiceDeps } from "./botService";
import { isTerminalBotStatus } from "./botStatus";
import { makeBotLeave } from "./leave";
import * as store from "./store";

/**
 * A deleted organization records no more calls (BOTS.md, "Deleting an organization"): the
 * transaction that records the deletion queues one `recall.bot.leave` provider call per active
 * bot (`provider_calls`, unique per bot), made after the commit and retried by the
 * `retryProviderCalls` job until Recall has the bot out of the call (or deleted it before it was
 * dispatched). A reservation still waiting for Recall's answer is queued too: its call waits
 * (retried) until the bot has its Recall id, or ends once the reservation is released. No new bot
 * can be sent: the deleted organization's credentials are refused, and the write guard in the
 * reservation's transaction finds no live organization (404).
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

/** The provider call's result for each way the bot was sent home. */
const RESULTS = { asked: "left", ended: "already_left", deleted: "deleted", gone: "gone" } as const;

/**
 * Tells the call's bot to leave (Recall's `leave_call`, a new idempotency key per attempt),
 * then reads the bot back so its end is recorded without waiting for the webhook. A refusal is
 * judged by the bot's state at Recall (leave.ts): ended, or deleted before it was dispatched, is
 * done; a bot still joining (or in the waiting room) is not, since it would record once admitted:
 * the call is retried with backoff until it is in the call and can leave. (Its own status
 * webhooks send it home sooner: its meeting was deleted with the organization.)
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
