import type { Db } from "@zigznote/database";
import type { PrismaClient } from "@zigznote/database";
import type { WriteGuard, WriteGuards } from "../http/auth";
import type { RouteDefinition } from "../http/route";
import type { JobDefinition } from "../lib/job";
import type { Logger } from "../lib/logger";
import { MINUTE_MS } from "../lib/time";
import { abortAbandonedUploads, type AbandonedUploadsDeps } from "./directUploads";
import { processDueRecordingImports, type RecordingImportDeps, type ResolveMedia } from "./imports";
import type { ImportMetrics } from "./resumableImport";
import { cleanupOrphanedStorage, type StoragePurgeDeps } from "./purge";
import { recordingRoutes, type RecordingRouteDeps } from "./routes";
import type { StorageProvider } from "./storage";

export interface RecordingsModuleDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  now: () => Date;
  /** Billing's write guard, run again in the transaction that records an upload. */
  guardWrite: WriteGuard;
  /** Billing's guards of the write actions, with the codes they answer (routes declare them). */
  writeGuards: WriteGuards;
  /** Billing's re-check of an organization whose stored objects were deleted. */
  onStorageFreed: (db: Db, organizationId: string) => Promise<void>;
  /** Billing's re-check of an organization that has just recorded a recording (after commit). */
  onStorageStored: (db: PrismaClient, organizationId: string) => Promise<void>;
  /** Where a Recall recording's media is (the bots feature asks Recall). */
  resolveMedia: ResolveMedia;
  /** Waits for the after-commit work a job caused (notices of a re-check) before its record. */
  afterJob: () => Promise<void>;
  /** RECORDING_MAX_BYTES. */
  maxBytes: number;
  /** Where imports count their resumptions and restarts. */
  metrics?: ImportMetrics;
  /** STORAGE_URL_TTL_SECONDS. */
  urlTtlSeconds: number;
  /** STORAGE_PURGE_AFTER_DAYS. */
  purgeAfterDays: number;
  /** JOB_BATCH_SIZE and JOB_CONCURRENCY. */
  batchSize: number;
  concurrency: number;
}

export interface RecordingsModule {
  routes: RouteDefinition[];
  jobs: JobDefinition[];
  /**
   * What the feature's services were built with: the bots feature's webhook handlers import
   * with `imports`; tools and tests call a service directly with the routes' own objects.
   */
  deps: {
    recordings: RecordingRouteDeps;
    imports: RecordingImportDeps;
    purge: StoragePurgeDeps;
    abandonedUploads: AbandonedUploadsDeps;
  };
}

/** Recordings as one app uses them: the routes, the imports of Recall media and the storage jobs. */
export function createRecordingsModule(deps: RecordingsModuleDeps): RecordingsModule {
  const { db, storage, logger, now, batchSize } = deps;
  const recordings: RecordingRouteDeps = {
    db,
    storage,
    logger,
    guardWrite: deps.guardWrite,
    onStorageFreed: deps.onStorageFreed,
    onStorageStored: deps.onStorageStored,
    now,
    maxBytes: deps.maxBytes,
    urlTtlSeconds: deps.urlTtlSeconds,
  };
  const imports: RecordingImportDeps = {
    db,
    storage,
    logger,
    now,
    resolveMedia: deps.resolveMedia,
    onStorageStored: deps.onStorageStored,
    maxBytes: deps.maxBytes,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  };
  const purge: StoragePurgeDeps = {
    db,
    storage,
    logger,
    purgeAfterDays: deps.purgeAfterDays,
    batchSize,
    onStorageFreed: deps.onStorageFreed,
  };
  const abandonedUploads: AbandonedUploadsDeps = { db, storage, logger, batchSize };
  return {
    deps: { recordings, imports, purge, abandonedUploads },
    routes: recordingRoutes(recordings, deps.writeGuards),
    jobs: [
      {
        name: "cleanupOrphanedStorage",
        schedule: "0 4 * * *",
        leaseMs: 120 * MINUTE_MS,
        description: "Purge recordings of meetings deleted more than STORAGE_PURGE_AFTER_DAYS ago",
        async run({ now }) {
          const result = await cleanupOrphanedStorage(purge, { now });
          await deps.afterJob();
          return result;
        },
      },
      {
        name: "abortAbandonedUploads",
        schedule: "20 * * * *",
        leaseMs: 30 * MINUTE_MS,
        description:
          "Abort recording uploads begun more than 24 h ago and never completed (their parts deleted), and those of recording imports that ended",
        run: ({ now }) => abortAbandonedUploads(abandonedUploads, { now }),
      },
      {
        name: "retryRecordingImports",
        schedule: "*/5 * * * *",
        leaseMs: 60 * MINUTE_MS,
        description: "Copy Recall recordings whose first copy failed (backoff per recording)",
        async run() {
          const result = await processDueRecordingImports(imports, {
            batchSize,
            concurrency: deps.concurrency,
          });
          return { rowsAffected: result.done, summary: { ...result } };
        },
      },
    ],
  };
}
