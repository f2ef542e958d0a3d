import type { Db, PrismaClient } from "@zigznote/database";
import pLimit from "p-limit";
import type { Logger } from "../lib/logger";
import { DAY_MS } from "../lib/time";
import type { StorageProvider } from "./storage";
import * as store from "./store";

/** What the storage purge job needs. */
export interface StoragePurgeDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  purgeAfterDays: number;
  batchSize: number;
  concurrency: number;
  /** Billing's re-check of an organization whose stored objects were deleted. */
  onStorageFreed?(db: Db, organizationId: string): Promise<void>;
}

export interface StoragePurgeResult {
  rowsAffected: number;
  summary: Record<string, unknown>;
}

/**
 * Meetings soft-deleted more than STORAGE_PURGE_AFTER_DAYS ago lose their stored objects: the
 * files first, then, in one transaction per batch, the rows and the meeting's `purgedAt`. The
 * rows are the list of what remains to delete, so a failure anywhere is finished by the next run
 * and no file is ever left without a row. A meeting whose file could not be deleted keeps its
 * rows and is retried next run. The organizations that lost objects get their plan violations
 * re-checked afterwards.
 */
export async function cleanupOrphanedStorage(
  deps: StoragePurgeDeps,
  input: { now: Date },
): Promise<StoragePurgeResult> {
  const { now } = input;
  const cutoff = new Date(now.getTime() - deps.purgeAfterDays * DAY_MS);
  const limit = pLimit(deps.concurrency);
  const failedMeetings = new Set<string>();
  let purgedMeetings = 0;
  let deletedObjects = 0;
  let freedBytes = 0n;
  const affectedOrganizations = new Set<string>();

  for (;;) {
    const meetingIds = await store.findPurgeableMeetingIds(deps.db, {
      cutoff,
      excluded: [...failedMeetings],
      limit: deps.batchSize,
    });
    if (meetingIds.length === 0) break;
    const objects = await store.findObjectsOfMeetings(deps.db, meetingIds);

    const results = await Promise.allSettled(
      objects.map((object) => limit(() => deps.storage.delete(object.key))),
    );
    const deleted = objects.filter((object, index) => {
      if (results[index]!.status === "fulfilled") return true;
      failedMeetings.add(object.meetingId);
      deps.logger.warn(
        { err: (results[index] as PromiseRejectedResult).reason, key: object.key },
        "could not delete a stored object; retrying next run",
      );
      return false;
    });
    const purgeable = meetingIds.filter((id) => !failedMeetings.has(id));

    await store.deleteObjectsAndMarkPurged(deps.db, {
      objectIds: deleted.map((object) => object.id),
      meetingIds: purgeable,
      at: now,
    });
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
      await deps.onStorageFreed?.(deps.db, organizationId);
    } catch (error) {
      recheckFailures += 1;
      deps.logger.error({ err: error, organizationId }, "plan violation re-check failed");
    }
  }

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
