/**
 * Copies provider recordings (Recall's media) into our storage exactly once.
 *
 * The webhook that says "recording ready" only enqueues a row (unique per provider recording,
 * inside the webhook's transaction), so the webhook answers at once and a replayed event queues
 * nothing new. After commit, and again from a periodic job for retries, `processRecordingImport`
 * claims the row with a conditional UPDATE (one worker wins; a crashed worker's claim expires),
 * streams the media into storage and records the storage object, or schedules a retry with
 * backoff until the attempts run out. On an object store the copy resumes where the last attempt
 * stopped (`resumableImport.ts`); on local disk it starts from byte 0 each time.
 */
import type { Db, PrismaClient, RecordingImport, StorageObject } from "@zigznote/database";
import { NotFoundError, PayloadTooLargeError } from "@zigznote/shared";
import { backoffDelayMs, processAllDue } from "../lib/dueWork";
import type { Logger } from "../lib/logger";
import { storableExcerpt } from "../lib/text";
import { openMediaDownload } from "./mediaDownload";
import { storeRecording, type RecordingStoreDeps } from "./recordingService";
import { abortLeftoverImportUpload } from "./importUploads";
import { copyResumably, ImportClaimLostError, type ImportMetrics } from "./resumableImport";
import type { StorageProvider } from "./storage";
import * as store from "./store";

export interface MediaLocation {
  url: string;
  contentType: string;
}

/** Where a pending import's media can be downloaded now (download URLs expire: ask each time). */
export type ResolveMedia = (recordingImport: RecordingImport) => Promise<MediaLocation>;

export interface RecordingImportDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  now: () => Date;
  resolveMedia: ResolveMedia;
  /** Billing's re-check once a copy is recorded (see `RecordingStoreDeps`). */
  onStorageStored?: RecordingStoreDeps["onStorageStored"];
  maxBytes: number;
  maxAttempts?: number;
  /**
   * A claim not renewed for this long is presumed dead (its worker crashed) and can be taken
   * over (15 min). A running copy renews its claim every third of it, however long it takes.
   */
  claimLeaseMs?: number;
  /** How often a running copy renews its claim, in real time (a third of `claimLeaseMs`). */
  claimRenewalMs?: number;
  /**
   * A download that receives nothing for this long (the answer's headers, then any byte of the
   * body) is given up, and retried later (60 s). A slow copy that goes on moving is never cut:
   * a recording of several gigabytes may take longer than any total limit would allow.
   */
  downloadIdleTimeoutMs?: number;
  /** Resumptions and restarts of copies (object stores resume; see `resumableImport.ts`). */
  metrics?: ImportMetrics;
}

export interface EnqueueRecordingImportInput {
  organizationId: string;
  meetingId: string;
  botId?: string | null;
  externalId: string;
  provider?: string;
  /** When the copy is due (and queued). */
  now: Date;
}

/**
 * Queues the copy, due at `now`, unless it is already queued, running or done (in `deps.db`: the
 * caller's transaction, typically the webhook's); a copy that gave up is queued again with all
 * its attempts. Returns the queued row's id, or null when there was one already.
 */
export function enqueueRecordingImport(
  deps: { db: Db },
  input: EnqueueRecordingImportInput,
): Promise<string | null> {
  return store.insertRecordingImport(deps.db, {
    organizationId: input.organizationId,
    meetingId: input.meetingId,
    botId: input.botId ?? null,
    provider: input.provider ?? "recall",
    externalId: input.externalId,
    now: input.now,
  });
}

/** Now, and the time before which a claim has expired (its worker is presumed dead). */
function claimTimes(deps: RecordingImportDeps): { now: Date; leaseExpired: Date } {
  const now = deps.now();
  return {
    now,
    leaseExpired: new Date(now.getTime() - claimLeaseMs(deps)),
  };
}

function claimLeaseMs(deps: RecordingImportDeps): number {
  return deps.claimLeaseMs ?? 15 * 60 * 1000;
}

function claim(deps: RecordingImportDeps, id: string): Promise<RecordingImport | null> {
  return store.claimRecordingImport(deps.db, { id, ...claimTimes(deps) });
}

/**
 * Renews the claim on `job` every `intervalMs` while its copy runs, so that a long copy is not
 * taken for a dead one; when the claim turns out to be lost (its lease ran out anyway, and
 * another worker took the import over), `onLost` stops the copy. Returns the stop function.
 */
function renewClaimWhileRunning(
  deps: RecordingImportDeps,
  job: RecordingImport,
  onLost: () => void,
): () => void {
  const intervalMs = deps.claimRenewalMs ?? Math.floor(claimLeaseMs(deps) / 3);
  const interval = setInterval(() => {
    store
      .renewImportClaim(deps.db, { id: job.id, attempts: job.attempts, now: deps.now() })
      .then((isHeld) => {
        if (!isHeld) onLost();
      })
      .catch((error: unknown) => {
        // The next renewal tries again; the lease is three renewals long.
        deps.logger.warn(
          { err: error, importId: job.id },
          "could not renew a recording import's claim",
        );
      });
  }, intervalMs);
  interval.unref();
  return () => clearInterval(interval);
}

function idleTimeoutMs(deps: RecordingImportDeps): number {
  return deps.downloadIdleTimeoutMs ?? 60 * 1000;
}

/**
 * The whole copy in one go (local disk: nothing is kept between attempts), then the import's
 * `done`. ImportClaimLostError when the claim was lost before `done` was written.
 */
async function copyWhole(
  deps: RecordingImportDeps,
  job: RecordingImport,
  location: MediaLocation,
  signal: AbortSignal,
): Promise<StorageObject> {
  const { body } = await openMediaDownload(location.url, {
    idleTimeoutMs: idleTimeoutMs(deps),
    signal,
  });
  let object;
  try {
    object = await storeRecording(deps, {
      organizationId: job.organizationId,
      meetingId: job.meetingId,
      body,
      contentType: location.contentType,
      maxBytes: deps.maxBytes,
      source: "recall",
    });
  } finally {
    // A refusal before or during the copy leaves the download open otherwise (until its timeout).
    body.destroy();
  }
  if (
    !(await store.markImportDone(deps.db, {
      id: job.id,
      attempts: job.attempts,
      storageObjectId: object.id,
    }))
  ) {
    throw new ImportClaimLostError();
  }
  return object;
}

/** Aborts the upload an ended import still names (the abandoned-uploads job retries a failure). */
async function abortImportUpload(deps: RecordingImportDeps, id: string): Promise<void> {
  const row = await deps.db.recordingImport.findUnique({
    where: { id },
    select: { status: true, uploadKey: true, storageUploadId: true },
  });
  if (!row?.uploadKey || !row.storageUploadId || row.status !== "failed") return;
  await abortLeftoverImportUpload(deps, {
    id,
    uploadKey: row.uploadKey,
    storageUploadId: row.storageUploadId,
  });
}

export type ImportOutcome = "done" | "retry_scheduled" | "failed" | "not_claimed";

/** Tries one import now if it is due and nobody else holds it. */
export async function processRecordingImport(
  deps: RecordingImportDeps,
  input: { importId: string },
): Promise<ImportOutcome> {
  const id = input.importId;
  const job = await claim(deps, id);
  if (!job) return "not_claimed";
  const copy = new AbortController();
  const stopRenewing = renewClaimWhileRunning(deps, job, () =>
    copy.abort(new Error("the import was taken over by another worker while it ran")),
  );
  try {
    // A deleted meeting keeps no recording: nothing to download (its purge would delete it).
    const isLive = await store.hasLiveMeeting(deps.db, {
      organizationId: job.organizationId,
      meetingId: job.meetingId,
    });
    if (!isLive) throw new NotFoundError("The meeting was deleted; its recording is not copied");
    const location = await deps.resolveMedia(job);
    const object = deps.storage.resumable
      ? await copyResumably(
          { ...deps, idleTimeoutMs: idleTimeoutMs(deps) },
          job,
          location,
          copy.signal,
        )
      : await copyWhole(deps, job, location, copy.signal);
    stopRenewing();
    deps.logger.info(
      { importId: id, meetingId: job.meetingId, sizeBytes: object.sizeBytes.toString() },
      "recording imported",
    );
    return "done";
  } catch (error) {
    stopRenewing();
    if (error instanceof ImportClaimLostError) {
      // Our lease ran out and another worker took the copy over: its outcome stands (the
      // recording stored last is the meeting's, whichever it is), and its upload is its own.
      deps.logger.warn({ importId: id }, "recording import taken over while it ran");
      return "not_claimed";
    }
    const message = error instanceof Error ? error.message : String(error);
    // The meeting is gone, or the recording is over the limit: another attempt ends the same way
    // (after downloading it all again).
    const isPermanent = error instanceof NotFoundError || error instanceof PayloadTooLargeError;
    const exhausted = isPermanent || job.attempts >= (deps.maxAttempts ?? 6);
    const isRecorded = await store.markImportAttemptFailed(deps.db, {
      id,
      attempts: job.attempts,
      isExhausted: exhausted,
      lastError: storableExcerpt(message, 2000),
      nextAttemptAt: new Date(deps.now().getTime() + backoffDelayMs(job.attempts)),
    });
    if (!isRecorded) {
      // Taken over meanwhile (our lease ran out): the other worker's outcome stands.
      deps.logger.warn({ err: error, importId: id }, "recording import taken over while it ran");
      return "not_claimed";
    }
    deps.logger.warn(
      { err: error, importId: id, attempts: job.attempts, exhausted },
      "recording import failed",
    );
    // Given up for good: the parts kept for a resumption go too. (A retry keeps them.)
    if (exhausted) await abortImportUpload(deps, id);
    return exhausted ? "failed" : "retry_scheduled";
  }
}

/** The periodic pass: every due import, in batches, a few at a time. Returns imports completed. */
export async function processDueRecordingImports(
  deps: RecordingImportDeps,
  options: { batchSize: number; concurrency: number },
): Promise<{ done: number; attempted: number }> {
  const outcomes = await processAllDue({
    findDue: (limit) => store.findDueImportIds(deps.db, { ...claimTimes(deps), limit }),
    process: (importId) => processRecordingImport(deps, { importId }),
    ...options,
  });
  return {
    done: outcomes.filter((outcome) => outcome === "done").length,
    attempted: outcomes.length,
  };
}
