import type { Db, PrismaClient } from "@zigznote/database";
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
  /** Meetings per batch; their objects are deleted in bulk calls (DeleteObjects: 1000 keys). */
  batchSize: number;
  /** Billing's re-check of an organization whose stored objects were deleted. */
  onStorageFreed?(db: Db, organizationId: string): Promise<void>;
}

export interface StoragePurgeResult {
  rowsAffected: number;
  summary: Record<string, unknown>;
}

/**
 * Meetings soft-deleted more than STORAGE_PURGE_AFTER_DAYS ago lose their stored objects: per
 * batch of meetings, their objects are deleted in bulk (`deleteMany`: DeleteObjects with up to
 * 1000 keys a call on S3; an object already gone counts as deleted), then one transaction deletes
 * the rows of the objects that are gone and marks purged the meetings none of whose objects
 * failed. The rows are the list of what remains to delete, so a failed call or key is retried by
 * the next run and no object is ever left without a row. The organizations that lost objects get
 * their plan violations re-checked afterwards.
 */
export async function cleanupOrphanedStorage(
  deps: StoragePurgeDeps,
  input: { now: Date },
): Promise<StoragePurgeResult> {
  const { now } = input;
  const cutoff = new Date(now.getTime() - deps.purgeAfterDays * DAY_MS);
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

    const { failed } = await deps.storage.deleteMany(objects.map((object) => object.key));
    const failures = new Map(failed.map((failure) => [failure.key, failure.error]));
    const deleted = objects.filter((object) => {
      if (!failures.has(object.key)) return true;
      failedMeetings.add(object.meetingId);
      return false;
    });
    if (failed.length > 0) {
      deps.logger.warn(
        {
          err: failed[0]!.error,
          failedObjects: failed.length,
          keys: failed.slice(0, 5).map((f) => f.key),
        },
        "could not delete stored objects; their meetings are retried next run",
      );
    }
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
