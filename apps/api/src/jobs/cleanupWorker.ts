/**
 * The cleanup jobs under their original entry point. Each lives with the feature that owns the
 * work: stuck bots in `bots/stuckBots.ts`, the storage purge in `recordings/purge.ts`, processed
 * webhook records in `webhooks/idempotency.ts`; each feature's `module.ts` schedules them.
 */
import type { RecallClient } from "../bots";
import { cleanupOrphanedBots as cleanupBots } from "../bots";
import type { AppContext } from "../context";
import { cleanupOrphanedStorage as purgeStorage } from "../recordings";

export { cleanupOldWebhooks } from "../webhooks";

/** Ends bots stuck without a status change (asking Recall first). */
export function cleanupOrphanedBots(
  ctx: Pick<AppContext, "modules">,
  recall: RecallClient,
  now: Date,
): ReturnType<typeof cleanupBots> {
  return cleanupBots({ ...ctx.modules.bots.deps.stuckBots, recall }, { now });
}

/** Purges the recordings of meetings deleted more than STORAGE_PURGE_AFTER_DAYS ago. */
export function cleanupOrphanedStorage(
  ctx: Pick<AppContext, "modules">,
  now: Date,
): ReturnType<typeof purgeStorage> {
  return purgeStorage(ctx.modules.recordings.deps.purge, { now });
}
