/**
 * Direct uploads: the client sends a recording's bytes straight to the object store through
 * presigned URLs, and the API only signs, checks and records.
 *
 * 1. `createDirectUpload` picks a random key and a part layout for the declared size, starts a
 *    multipart upload (even for one part: its URLs stop writing once it is completed or
 *    aborted), records the upload row and signs a PUT URL per part (each signs its exact
 *    `Content-Length`, so the store takes no other size).
 * 2. The client PUTs the parts (`getDirectUpload` signs fresh URLs and says which parts are
 *    already in the store, so an interrupted upload resumes).
 * 3. `completeDirectUpload` checks every part is there with its size, has the store assemble
 *    them, checks the object (HeadObject: the declared size, within RECORDING_MAX_BYTES), reads
 *    it once in the store to compute its SHA-256, and records it with `recordStoredRecording`,
 *    exactly as a streamed upload is recorded. One conditional UPDATE makes exactly one of two
 *    concurrent completions win.
 * An upload is accepted for completion for UPLOAD_WINDOW_MS; `abortAbandonedUploads` (a job)
 * deletes its parts and object once it is ABANDONED_AFTER_MS old. The hour between the two means
 * no completion can commit while the job deletes the bytes, whatever the instances' clocks say.
 */
import type { PrismaClient, RecordingUpload, StorageObject } from "@zigznote/database";
import {
  ConflictError,
  NotFoundError,
  PayloadTooLargeError,
  ProviderNotConfiguredError,
} from "@zigznote/shared";
import type { Logger } from "../lib/logger";
import { HOUR_MS } from "../lib/time";
import {
  recordStoredRecording,
  type RecordingRef,
  type RecordingStoreDeps,
} from "./recordingService";
import { abortLeftoverImportUploads } from "./importUploads";
import { partLayout, partSizeFor } from "./s3Storage";
import {
  digestStoredObject,
  newStorageKey,
  type DirectUploadPlan,
  type PresignedTransfers,
  type StorageProvider,
  type StoredPart,
} from "./storage";
import * as store from "./store";

/** How long after its start an upload may be completed. */
export const UPLOAD_WINDOW_MS = 23 * HOUR_MS;
/** How old an upload that was never completed is when the job aborts it. */
export const ABANDONED_AFTER_MS = 24 * HOUR_MS;

export interface DirectUploadDeps extends RecordingStoreDeps {
  now(): Date;
  /** Lifetime of each presigned URL (STORAGE_URL_TTL_SECONDS). */
  urlTtlSeconds: number;
  /** RECORDING_MAX_BYTES. */
  maxBytes: number;
}

export interface DirectUploadRef extends RecordingRef {
  uploadId: string;
}

/** A part as the client sees it: where to PUT which bytes, and whether the store has it. */
export interface DirectUploadPart {
  partNumber: number;
  url: string;
  offset: number;
  sizeBytes: number;
  headers: Record<string, string>;
  isUploaded: boolean;
}

export interface DirectUploadView {
  upload: RecordingUpload;
  /** Signed URLs of a pending upload (none once it is closed). */
  parts: DirectUploadPart[];
  urlsExpireAt: Date | null;
}

function presignedOf(storage: StorageProvider): PresignedTransfers {
  if (!storage.presigned) {
    throw new ProviderNotConfiguredError(
      "Direct uploads need object storage: this server keeps recordings on local disk " +
        "(upload with PUT /api/v1/meetings/{id}/recording instead)",
      {
        provider: "object storage",
        variables: ["STORAGE_DRIVER", "S3_BUCKET", "S3_REGION"],
      },
    );
  }
  return storage.presigned;
}

function uploadNotFound(): NotFoundError {
  return new NotFoundError("No such upload for this meeting");
}

/** The upload `ref` names, looked up within its organization and meeting; 404 otherwise. */
async function findUpload(
  deps: Pick<DirectUploadDeps, "db">,
  ref: DirectUploadRef,
): Promise<RecordingUpload> {
  const upload = await store.findRecordingUpload(deps.db, {
    id: ref.uploadId,
    organizationId: ref.organizationId,
    meetingId: ref.meetingId,
  });
  if (!upload) throw uploadNotFound();
  return upload;
}

/** Whether the upload takes no more parts and cannot complete: no longer pending, or past its window. */
function isClosed(upload: RecordingUpload, now: Date): boolean {
  return upload.status !== "pending" || upload.expiresAt <= now;
}

function planOf(upload: RecordingUpload): DirectUploadPlan {
  return {
    contentType: upload.contentType,
    sizeBytes: Number(upload.sizeBytes),
    partSizeBytes: Number(upload.partSizeBytes),
  };
}

function closedUpload(upload: RecordingUpload, now: Date): ConflictError {
  const status = upload.status === "pending" && upload.expiresAt <= now ? "expired" : upload.status;
  return new ConflictError(`The upload is ${status}: start a new one`, {
    code: "UPLOAD_CLOSED",
    details: { status, expiresAt: upload.expiresAt.toISOString() },
  });
}

/** Signed URLs for every part of a pending upload, marking those the store already holds. */
async function signParts(
  deps: Pick<DirectUploadDeps, "storage" | "urlTtlSeconds" | "now">,
  upload: RecordingUpload,
  held: StoredPart[],
): Promise<Pick<DirectUploadView, "parts" | "urlsExpireAt">> {
  const presigned = presignedOf(deps.storage);
  const plan = planOf(upload);
  const urls = await presigned.uploadUrls(upload.key, {
    storageUploadId: upload.storageUploadId,
    plan,
    expiresInSeconds: deps.urlTtlSeconds,
  });
  // A single PUT signs the type too; parts take theirs from the multipart upload.
  const headers: Record<string, string> =
    upload.storageUploadId === null ? { "Content-Type": upload.contentType } : {};
  return {
    parts: urls.map((part) => ({
      ...part,
      headers,
      isUploaded: held.some(
        (stored) => stored.partNumber === part.partNumber && stored.sizeBytes === part.sizeBytes,
      ),
    })),
    urlsExpireAt: new Date(deps.now().getTime() + deps.urlTtlSeconds * 1000),
  };
}

/** What the store holds of a pending upload: its parts, or the single PUT's object. */
async function heldParts(
  presigned: PresignedTransfers,
  upload: RecordingUpload,
): Promise<StoredPart[]> {
  if (upload.storageUploadId !== null) {
    return presigned.listParts(upload.key, upload.storageUploadId).catch((error: unknown) => {
      // Assembled already (a completion that failed later): nothing left to upload.
      if (error instanceof NotFoundError) return [];
      throw error;
    });
  }
  const head = await presigned.head(upload.key);
  return head ? [{ partNumber: 1, sizeBytes: head.sizeBytes, etag: "" }] : [];
}

/**
 * Starts a direct upload of a recording of `sizeBytes` for a live meeting: 413 above
 * RECORDING_MAX_BYTES, 503 PROVIDER_NOT_CONFIGURED on local storage.
 */
export async function createDirectUpload(
  deps: DirectUploadDeps,
  input: RecordingRef & { contentType: string; sizeBytes: number },
): Promise<DirectUploadView> {
  const presigned = presignedOf(deps.storage);
  if (input.sizeBytes > deps.maxBytes) {
    throw new PayloadTooLargeError(`Recording is larger than the limit of ${deps.maxBytes} bytes`, {
      details: { maxBytes: deps.maxBytes, sizeBytes: input.sizeBytes },
    });
  }
  // The meeting must be live (404 otherwise) before anything is started in the store.
  if (!(await store.hasLiveMeeting(deps.db, input))) throw new NotFoundError("Meeting not found");
  const key = newStorageKey(input.organizationId);
  const plan: DirectUploadPlan = {
    contentType: input.contentType,
    sizeBytes: input.sizeBytes,
    partSizeBytes: partSizeFor(input.sizeBytes),
  };
  const storageUploadId = await presigned.startUpload(key, plan);
  const now = deps.now();
  let upload: RecordingUpload;
  try {
    upload = await store.insertRecordingUpload(deps.db, {
      organizationId: input.organizationId,
      meetingId: input.meetingId,
      key,
      storageUploadId,
      contentType: plan.contentType,
      sizeBytes: BigInt(plan.sizeBytes),
      partSizeBytes: BigInt(plan.partSizeBytes),
      createdAt: now,
      expiresAt: new Date(now.getTime() + UPLOAD_WINDOW_MS),
    });
  } catch (error) {
    // Not recorded: nothing will ever complete it, so it goes now (or to the store's sweep).
    await presigned.abortUpload(key, storageUploadId).catch((abortError: unknown) => {
      deps.logger.warn({ err: abortError, key }, "could not abort an unrecorded direct upload");
    });
    throw error;
  }
  return { upload, ...(await signParts(deps, upload, [])) };
}

/** The upload, with fresh URLs and the parts already in the store while it is pending. */
export async function getDirectUpload(
  deps: DirectUploadDeps,
  ref: DirectUploadRef,
): Promise<DirectUploadView> {
  const upload = await findUpload(deps, ref);
  if (isClosed(upload, deps.now())) {
    return { upload, parts: [], urlsExpireAt: null };
  }
  const held = await heldParts(presignedOf(deps.storage), upload);
  return { upload, ...(await signParts(deps, upload, held)) };
}

/**
 * The plan's parts as the store holds them; 409 UPLOAD_INCOMPLETE or UPLOAD_SIZE_MISMATCH unless
 * each is there with its size. Parts beyond the plan are left out (the store discards them).
 */
function plannedParts(upload: RecordingUpload, held: StoredPart[]): StoredPart[] {
  const expected = partLayout(planOf(upload));
  const missingParts = expected
    .filter((part) => !held.some((stored) => stored.partNumber === part.partNumber))
    .map((part) => part.partNumber);
  const wrongSizes = expected.flatMap((part) => {
    const stored = held.find((candidate) => candidate.partNumber === part.partNumber);
    return !stored || stored.sizeBytes === part.sizeBytes
      ? []
      : [
          {
            partNumber: part.partNumber,
            expectedBytes: part.sizeBytes,
            storedBytes: stored.sizeBytes,
          },
        ];
  });
  if (wrongSizes.length > 0) {
    throw new ConflictError("Parts in the store have other sizes than the upload declared", {
      code: "UPLOAD_SIZE_MISMATCH",
      details: { parts: wrongSizes.slice(0, 100) },
    });
  }
  if (missingParts.length > 0) {
    throw new ConflictError(
      `${missingParts.length} of ${expected.length} parts are not in the store yet`,
      {
        code: "UPLOAD_INCOMPLETE",
        details: { missingParts: missingParts.slice(0, 100), expectedParts: expected.length },
      },
    );
  }
  return held.filter((stored) => stored.partNumber <= expected.length);
}

/**
 * Has the store assemble a multipart upload after checking its parts. A multipart upload the
 * store no longer knows was assembled by an earlier completion (that failed later on) when its
 * object is there; else it is gone (UPLOAD_CLOSED).
 */
async function assembleParts(
  presigned: PresignedTransfers,
  upload: RecordingUpload,
  storageUploadId: string,
  now: Date,
): Promise<void> {
  let held: StoredPart[];
  try {
    held = await presigned.listParts(upload.key, storageUploadId);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    if (await presigned.head(upload.key)) return;
    throw closedUpload({ ...upload, status: "aborted" }, now);
  }
  const parts = plannedParts(upload, held);
  try {
    await presigned.completeUpload(upload.key, storageUploadId, parts);
  } catch (error) {
    // A concurrent completion assembled it first: its object is the same bytes.
    if (error instanceof NotFoundError && (await presigned.head(upload.key))) return;
    throw error;
  }
}

/**
 * Completes a direct upload and records the object as the meeting's recording; see the module
 * comment. 409 UPLOAD_INCOMPLETE / UPLOAD_SIZE_MISMATCH leave the upload pending (the client
 * sends the missing or wrong parts, then completes again); 409 UPLOAD_CLOSED once it was
 * completed, aborted or is past its window.
 */
export async function completeDirectUpload(
  deps: DirectUploadDeps,
  ref: DirectUploadRef,
): Promise<{ object: StorageObject; replaced: number }> {
  const presigned = presignedOf(deps.storage);
  const upload = await findUpload(deps, ref);
  if (isClosed(upload, deps.now())) {
    throw closedUpload(upload, deps.now());
  }

  const plan = planOf(upload);
  if (upload.storageUploadId !== null) {
    await assembleParts(presigned, upload, upload.storageUploadId, deps.now());
  }
  const head = await presigned.head(upload.key);
  if (!head) {
    throw new ConflictError("The recording is not in the store yet: PUT it to the upload's URL", {
      code: "UPLOAD_INCOMPLETE",
      details: { missingParts: [1], expectedParts: 1 },
    });
  }
  if (head.sizeBytes > deps.maxBytes) {
    throw new PayloadTooLargeError(`Recording is larger than the limit of ${deps.maxBytes} bytes`, {
      details: { maxBytes: deps.maxBytes, sizeBytes: head.sizeBytes },
    });
  }
  if (head.sizeBytes !== plan.sizeBytes) {
    throw new ConflictError("The object in the store is not the size the upload declared", {
      code: "UPLOAD_SIZE_MISMATCH",
      details: { expectedBytes: plan.sizeBytes, storedBytes: head.sizeBytes },
    });
  }
  // Read once inside the store (never through the client) for the recording's SHA-256.
  const { sha256, sizeBytes } = await digestStoredObject(deps.storage, upload.key);
  if (sizeBytes !== plan.sizeBytes) {
    throw new ConflictError("The object in the store changed while it was being checked", {
      code: "UPLOAD_SIZE_MISMATCH",
      details: { expectedBytes: plan.sizeBytes, storedBytes: sizeBytes },
    });
  }

  const now = deps.now();
  return recordStoredRecording(
    deps,
    {
      organizationId: upload.organizationId,
      meetingId: upload.meetingId,
      key: upload.key,
      source: "upload",
      contentType: upload.contentType,
      sizeBytes,
      sha256,
    },
    {
      // Before the row is written: the loser of two completions stops here, touching nothing.
      claim: async (tx) => {
        if (!(await store.markUploadCompleted(tx, { id: upload.id, now }))) {
          const current = await store.findRecordingUpload(tx, {
            id: upload.id,
            organizationId: upload.organizationId,
            meetingId: upload.meetingId,
          });
          throw closedUpload(current ?? upload, now);
        }
      },
      recorded: (tx, object) =>
        store.setUploadStorageObject(tx, { id: upload.id, storageObjectId: object.id }),
    },
  );
}

export interface AbandonedUploadsDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  batchSize: number;
}

/**
 * The job: direct uploads begun more than ABANDONED_AFTER_MS ago and never completed lose their
 * parts and object in the store first, then are marked aborted (a failure leaves the row pending,
 * so the next run tries again); then the store's own unfinished uploads of that age (a crashed
 * instance's streamed uploads) are ended, except those of imports still queued or running (a
 * resumable import keeps its upload between attempts); the uploads imports that ended could not
 * abort are aborted too. Returns the uploads aborted.
 */
export async function abortAbandonedUploads(
  deps: AbandonedUploadsDeps,
  input: { now: Date },
): Promise<{ rowsAffected: number; summary: Record<string, unknown> }> {
  const createdBefore = new Date(input.now.getTime() - ABANDONED_AFTER_MS);
  const failed: string[] = [];
  let aborted = 0;
  for (;;) {
    const uploads = await store.findAbandonedUploads(deps.db, {
      createdBefore,
      limit: deps.batchSize,
      excluded: failed,
    });
    if (uploads.length === 0) break;
    for (const upload of uploads) {
      try {
        await deps.storage.presigned?.abortUpload(upload.key, upload.storageUploadId);
      } catch (error) {
        failed.push(upload.id);
        deps.logger.warn(
          { err: error, uploadId: upload.id },
          "could not abort a direct upload; retrying next run",
        );
        continue;
      }
      if (await store.markUploadAborted(deps.db, { id: upload.id, now: input.now })) aborted += 1;
    }
  }
  const importUploads = await abortLeftoverImportUploads(deps);
  // Resumable imports keep their upload open between attempts, however long they take: the
  // store-wide sweep leaves those of imports still queued or running alone.
  const keepUploadIds = await store.findLiveImportUploadIds(deps.db);
  const storeUploads = await deps.storage.abortIncompleteUploads(createdBefore, { keepUploadIds });
  return {
    rowsAffected: aborted + importUploads.aborted,
    summary: {
      directUploads: aborted,
      failed: failed.length + importUploads.failed,
      importUploads: importUploads.aborted,
      storeUploads,
    },
  };
}
