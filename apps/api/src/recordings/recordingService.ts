import { pipeline, Transform, type Readable } from "node:stream";
import type { Prisma, PrismaClient, StorageObject } from "@zigznote/database";
import { BadRequestError, NotFoundError, UnsupportedMediaTypeError } from "@zigznote/shared";
import type { WriteGuard } from "../http/auth";
import { transaction } from "../lib/afterCommit";
import type { Logger } from "../lib/logger";
import { lockMeeting } from "../meetings";
import { newStorageKey, type ByteRange, type StorageProvider } from "./storage";
import * as store from "./store";

/** Media types accepted as recordings. */
export const RECORDING_CONTENT_TYPES = [
  "video/mp4",
  "video/webm",
  "video/quicktime",
  "audio/mpeg",
  "audio/mp4",
  "audio/wav",
  "audio/webm",
  "audio/ogg",
] as const;

/** Where recordings are stored: their rows and their bytes. */
export interface RecordingStoreDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  /**
   * Billing's write guard (`recording.create`), run again in the transaction that records the
   * upload: the route's early check answered before the bytes arrived, and the storage grace may
   * have ended while they did. Uploads have it; the copies of recordings Recall made for a bot
   * billing admitted (imports) do not.
   */
  guardWrite?: WriteGuard;
  /**
   * Billing's re-check of the organization's plan violations, after a recording is recorded
   * (its own transaction, once the recording's committed): a recording that takes storage over
   * the plan's limit starts the storage grace at once, and one that replaces a bigger recording
   * frees storage like a deletion. Not in the recording's transaction: the guard's lock there
   * (FOR NO KEY UPDATE, or FOR KEY SHARE from the insert of an import's row) would have to be
   * upgraded to the check's FOR UPDATE, which can deadlock (BILLING.md). Without it (tests of
   * the store) nothing is checked.
   */
  onStorageStored?(db: PrismaClient, organizationId: string): Promise<void>;
}

export interface RecordingDeps extends RecordingStoreDeps {
  /**
   * Runs in the transaction that deletes an organization's stored objects: billing re-checks
   * the plan's storage limit there, so freed storage resolves a violation at once.
   */
  onStorageFreed(tx: Prisma.TransactionClient, organizationId: string): Promise<void>;
}

export interface RecordingRef {
  organizationId: string;
  meetingId: string;
}

export interface StoreRecordingInput extends RecordingRef {
  body: Readable;
  contentType: string;
  maxBytes: number;
  source?: "upload" | "recall";
}

function meetingNotFound(): NotFoundError {
  return new NotFoundError("Meeting not found");
}

function noRecording(): NotFoundError {
  return new NotFoundError("This meeting has no recording");
}

async function assertLiveMeeting(deps: Pick<RecordingDeps, "db">, ref: RecordingRef) {
  if (!(await store.hasLiveMeeting(deps.db, ref))) throw meetingNotFound();
}

/** 400 EMPTY_RECORDING: a recording needs at least one byte; the stored one stays as it was. */
export function emptyRecording(): BadRequestError {
  return new BadRequestError("The recording is empty: send its bytes as the request body", {
    code: "EMPTY_RECORDING",
  });
}

/**
 * `body` as it passes, failing at its end if not a byte went through. Storage refuses a body
 * that fails (nothing is left behind), so an empty upload can never replace a recording, whatever
 * the request announced (a chunked body says nothing of its length up front).
 */
function nonEmpty(body: Readable): Readable {
  let hasBytes = false;
  const guard = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (chunk.length > 0) hasBytes = true;
      callback(null, chunk);
    },
    flush(callback) {
      callback(hasBytes ? null : emptyRecording());
    },
  });
  // An error of the source (an aborted upload) fails the guard with that same error.
  return pipeline(body, guard, () => {});
}

/** The 415 of an upload whose Content-Type (`header`) is missing or not a recording's. */
export function unsupportedRecordingType(header: string | undefined): UnsupportedMediaTypeError {
  const accepted = [...RECORDING_CONTENT_TYPES];
  return new UnsupportedMediaTypeError(
    header
      ? `Unsupported recording content type "${header}": send one of ${accepted.join(", ")}`
      : "The upload has no Content-Type: send the recording's media type, e.g. " +
          '`-H "Content-Type: video/mp4"` with `curl -T`',
    { details: { contentType: header ?? null, accepted } },
  );
}

/** The content type without parameters, lower-cased, if it is one we accept (else 415). */
export function parseRecordingContentType(header: string | undefined): string {
  const type = (header ?? "").split(";")[0]!.trim().toLowerCase();
  if (!(RECORDING_CONTENT_TYPES as readonly string[]).includes(type)) {
    throw unsupportedRecordingType(header?.trim() || undefined);
  }
  return type;
}

/**
 * Streams a recording into storage and makes it the meeting's recording. Order matters:
 * 1. the bytes go to a new, random key (nothing visible changes while they arrive);
 * 2. one transaction records the new object and drops the old rows;
 * 3. only after that commit are the old files deleted.
 * A failure at 1 leaves nothing; at 2 the new file is deleted; at 3 a leftover file is logged
 * (it is no longer referenced, so usage is already right). An empty body fails at 1
 * (EMPTY_RECORDING): it never replaces a recording.
 */
export async function storeRecording(
  deps: RecordingStoreDeps,
  input: StoreRecordingInput,
): Promise<StorageObject> {
  return (await replaceRecording(deps, input)).object;
}

/** `storeRecording`, also saying how many earlier recordings it replaced (PUT: 201 vs 200). */
export async function replaceRecording(
  deps: RecordingStoreDeps,
  input: StoreRecordingInput,
): Promise<{ object: StorageObject; replaced: number }> {
  await assertLiveMeeting(deps, input);
  const key = newStorageKey(input.organizationId);
  const stored = await deps.storage.put(key, nonEmpty(input.body), {
    maxBytes: input.maxBytes,
    contentType: input.contentType,
  });
  try {
    return await recordStoredRecording(deps, {
      organizationId: input.organizationId,
      meetingId: input.meetingId,
      key,
      source: input.source ?? "upload",
      contentType: input.contentType,
      sizeBytes: stored.sizeBytes,
      sha256: stored.sha256,
    });
  } catch (error) {
    // The key is this call's alone: nothing refers to the bytes if they were not recorded.
    await deps.storage.delete(key).catch((cleanupError: unknown) => {
      deps.logger.error({ err: cleanupError, key }, "could not delete an unrecorded upload");
    });
    throw error;
  }
}

/** Steps of the caller's inside the recording's transaction (either may throw to roll it back). */
export interface RecordingHooks {
  /** Right after the meeting is locked, before any row changes. */
  claim?(tx: Prisma.TransactionClient): Promise<void>;
  /** Once the new row is written. */
  recorded?(tx: Prisma.TransactionClient, created: StorageObject): Promise<void>;
}

/** An object already in storage, to become the meeting's recording. */
export interface StoredRecordingInput extends RecordingRef {
  key: string;
  source: "upload" | "recall";
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * Makes an object already in storage the meeting's recording, the same way for every path that
 * stores one (a streamed upload, a direct upload, a Recall import): one transaction locks the
 * meeting (404 once it is deleted), drops the old rows and records the new one; after the commit
 * the replaced objects are deleted (a failure there is logged: they are no longer referenced).
 * The caller decides what becomes of the object when this throws.
 */
export async function recordStoredRecording(
  deps: RecordingStoreDeps,
  input: StoredRecordingInput,
  hooks: RecordingHooks = {},
): Promise<{ object: StorageObject; replaced: number }> {
  const [created, replaced] = await deps.db.$transaction(async (tx) => {
    // Lock the meeting row so two concurrent uploads replace each other in order; billing's
    // lock on the organization comes after it (the order a deletion's re-check takes them).
    // Recall's imports come without a guard: a recording already made is never refused.
    await lockMeeting({ db: tx }, input);
    await deps.guardWrite?.(tx, {
      organizationId: input.organizationId,
      action: "recording.create",
    });
    await hooks.claim?.(tx);
    const old = await store.findRecordingKeys(tx, { meetingId: input.meetingId });
    if (old.length > 0)
      await store.deleteStorageObjects(
        tx,
        old.map((o) => o.id),
      );
    const row = await store.insertRecordingObject(tx, {
      organizationId: input.organizationId,
      meetingId: input.meetingId,
      key: input.key,
      source: input.source,
      contentType: input.contentType,
      sizeBytes: BigInt(input.sizeBytes),
      sha256: input.sha256,
    });
    await hooks.recorded?.(tx, row);
    return [row, old] as const;
  });

  for (const old of replaced) {
    await deps.storage.delete(old.key).catch((error: unknown) => {
      deps.logger.error({ err: error, key: old.key }, "could not delete a replaced recording");
    });
  }
  // The recording is stored whatever the check says: a failure is logged, not answered (a retry
  // would store it again). The organization's next check (another recording, a deletion, a plan
  // change) records what this one missed.
  await deps.onStorageStored?.(deps.db, input.organizationId).catch((error: unknown) => {
    deps.logger.error(
      { err: error, organizationId: input.organizationId },
      "plan violation re-check after a recording failed",
    );
  });
  return { object: created, replaced: replaced.length };
}

/** The meeting's current recording row. NotFoundError for another organization's meeting. */
export async function findRecording(
  deps: Pick<RecordingDeps, "db">,
  ref: RecordingRef,
): Promise<StorageObject> {
  const found = await store.findLiveMeetingRecording(deps.db, ref);
  if (!found) throw meetingNotFound();
  if (!found.object) throw noRecording();
  return found.object;
}

/** The bytes of a recording row (all, or the inclusive `range`), streamed from storage. */
export async function readRecording(
  deps: Pick<RecordingDeps, "storage">,
  input: { object: StorageObject; range?: ByteRange },
): Promise<{ body: Readable; sizeBytes: number }> {
  return deps.storage.get(input.object.key, input.range);
}

/** The meeting's current recording, streamed. NotFoundError for another organization's meeting. */
export async function openRecording(
  deps: RecordingStoreDeps,
  ref: RecordingRef,
): Promise<{ object: StorageObject; body: Readable; sizeBytes: number }> {
  const object = await findRecording(deps, ref);
  const { body, sizeBytes } = await readRecording(deps, { object });
  return { object, body, sizeBytes };
}

/**
 * Deletes the meeting's recording: the files first, then the rows. The rows are the record of
 * what must be deleted, so a failure in between is finished by a retry (deleting a missing file
 * is not an error) and no file is ever left without a row pointing at it. The organization's
 * plan violations are re-checked in the transaction that deletes the rows.
 */
export async function deleteRecording(deps: RecordingDeps, ref: RecordingRef): Promise<number> {
  await assertLiveMeeting(deps, ref);
  const objects = await store.findRecordingKeys(deps.db, ref);
  if (objects.length === 0) throw noRecording();
  for (const object of objects) await deps.storage.delete(object.key);
  // Freed storage may resolve a storage violation: re-checked with the rows' deletion, at once.
  await transaction(deps.db, async (tx) => {
    await store.deleteStorageObjects(
      tx,
      objects.map((o) => o.id),
    );
    await deps.onStorageFreed(tx, ref.organizationId);
  });
  return objects.length;
}
