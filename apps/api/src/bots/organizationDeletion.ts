import type { Db } from "@zigznote/database";
import type { ProviderCalls } from "../providerCalls";
import { queueBotLeaves } from "./leaveCalls";
import * as store from "./store";

/**
 * A deleted organization records no more calls (BOTS.md, "Deleting an organization"): the
 * transaction that records the deletion queues one leave call per active bot (leaveCalls.ts),
 * made after the commit and retried until Recall has the bot out of the call (or deleted it
 * before it was dispatched). A reservation still waiting for Recall's answer is queued too: its
 * call waits (retried) until the bot has its Recall id, or ends once the reservation is
 * released. No new bot can be sent: the deleted organization's credentials are refused, and the
 * write guard in the reservation's transaction finds no live organization (404).
 */

/** Queues, in `db` (the deletion's transaction), a leave call for each active bot. */
export async function queueOrganizationBotLeaves(
  deps: { db: Db; calls: Pick<ProviderCalls, "enqueue"> },
  input: { organizationId: string },
): Promise<number> {
  const { organizationId } = input;
  const botIds = await store.findActiveBotIdsOfOrganization(deps.db, organizationId);
  return queueBotLeaves(deps, { organizationId, botIds, reason: "organization_deleted" });
}
