/**
 * The copy of a provider recording into an object store, resumable across attempts.
 *
 * The copy feeds a multipart upload that stays open when an attempt fails (a reset, a stalled or
 * cut download, a 5xx, our instance dying). The import row remembers the upload (its key and id),
 * the source's validator (strong ETag, else Last-Modified) and size from the first answer, and
 * each part as it completes. The next attempt, or the worker that takes a dead one's claim over,
 * checks the store still holds exactly the recorded parts (ListParts), asks the source for
 * `Range: bytes=N-` with `If-Range: <validator>` (N: the bytes in those parts) and goes on with
 * the next part number. Anything that does not prove the rest continues the same bytes (a 200:
 * the source ignored the Range or the object changed; a 206 starting elsewhere, of another size
 * or another ETag; parts that differ from the record; no validator) aborts the upload and starts
 * again from byte 0. Only the claim's holder touches the upload: the upload, every part and the
 * completion are recorded by conditional updates on that claim, and the recording row is written
 * in one transaction with the import's `done`, under the import's row lock.
 */
import type { PrismaClient, RecordingImport, StorageObject } from "@zigznote/database";
import { pipeline } from "node:stream";
import { NotFoundError, PayloadTooLargeError } from "@zigznote/shared";
import type { Logger } from "../lib/logger";
import type { Metrics } from "../lib/metrics";
import type { MediaLocation } from "./imports";
import {
  openMediaDownload,
  parseContentRange,
  validatorOf,
  type MediaResponse,
} from "./mediaDownload";
import { emptyRecording, recordStoredRecording, type RecordingStoreDeps } from "./recordingService";
import {
  digestStoredObject,
  MeteredStream,
  newStorageKey,
  type ResumableUploads,
  type StorageProvider,
  type StoredPart,
} from "./storage";
import * as store from "./store";

/** What the copy counts: resumptions, the bytes they did not download again, restarts by why. */
export type ImportMetrics = Pick<
  Metrics,
  "recordingImportResumes" | "recordingImportResumedBytes" | "recordingImportRestarts"
>;

export interface ResumableCopyDeps {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  now: () => Date;
  maxBytes: number;
  idleTimeoutMs: number;
  metrics?: ImportMetrics;
  /** Billing's re-check once the copy is recorded (see `RecordingStoreDeps`). */
  onStorageStored?: RecordingStoreDeps["onStorageStored"];
}

/** The claim on the import was lost (its lease ran out and another worker took it over). */
export class ImportClaimLostError extends Error {
  constructor() {
    super("the import was taken over by another worker while it ran");
    this.name = "ImportClaimLostError";
  }
}

/** The upload a copy feeds, as recorded on the import row. */
interface UploadState {
  key: string;
  uploadId: string;
  validator: string | null;
  sourceSize: number | null;
  partSize: number;
  parts: StoredPart[];
}

/** Why a copy started again from byte 0 (the metric's `reason` label). */
type RestartReason =
  | "nothing_stored"
  | "no_validator"
  | "upload_gone"
  | "parts_mismatch"
  | "range_ignored_or_changed"
  | "range_mismatch"
  | "unsatisfiable_range";

function recordedParts(value: unknown): StoredPart[] {
  if (!Array.isArray(value)) return [];
  return value.map((entry) => {
    const part = entry as { partNumber: unknown; sizeBytes: unknown; etag: unknown };
    return {
      partNumber: Number(part.partNumber),
      sizeBytes: Number(part.sizeBytes),
      etag: String(part.etag),
    };
  });
}

function uploadStateOf(job: RecordingImport): UploadState | null {
  if (!job.uploadKey || !job.storageUploadId || job.partSizeBytes === null) return null;
  return {
    key: job.uploadKey,
    uploadId: job.storageUploadId,
    validator: job.sourceValidator,
    sourceSize: job.sourceSizeBytes === null ? null : Number(job.sourceSizeBytes),
    partSize: Number(job.partSizeBytes),
    parts: recordedParts(job.uploadedParts),
  };
}

/** True when the store holds every recorded part (numbers 1..k, same sizes and ETags). */
function partsMatch(recorded: StoredPart[], held: StoredPart[]): boolean {
  const byNumber = new Map(held.map((part) => [part.partNumber, part]));
  return recorded.every((part, index) => {
    const stored = byNumber.get(part.partNumber);
    return (
      part.partNumber === index + 1 &&
      stored !== undefined &&
      stored.sizeBytes === part.sizeBytes &&
      stored.etag === part.etag
    );
  });
}

/** One attempt's copy of import `job` from `location`; see the module comment. */
class ResumableCopy {
  private readonly uploads: ResumableUploads;
  private state: UploadState | null;
  /** The byte this attempt's download started at (0: the meter's hash is the object's). */
  private startedAt = 0;

  constructor(
    private readonly deps: ResumableCopyDeps,
    private readonly job: RecordingImport,
    private readonly location: MediaLocation,
    private readonly signal: AbortSignal,
  ) {
    if (!deps.storage.resumable) throw new Error("the storage driver has no resumable uploads");
    this.uploads = deps.storage.resumable;
    this.state = uploadStateOf(job);
  }

  private get claim() {
    return { id: this.job.id, attempts: this.job.attempts };
  }

  private logContext() {
    return { importId: this.job.id, meetingId: this.job.meetingId };
  }

  /** Aborts the recorded upload and forgets it (the copy starts again from byte 0). */
  private async restart(reason: RestartReason): Promise<void> {
    const state = this.state;
    if (!state) return;
    const heldBytes = state.parts.reduce((sum, part) => sum + part.sizeBytes, 0);
    await this.uploads.abort(state.key, state.uploadId);
    // An upload gone may have been completed by an attempt that died before recording it: its
    // object, at the upload's own key (no other writer) and named by no row, would stay for good.
    if (reason === "upload_gone" && !(await store.isRecordedKey(this.deps.db, state.key))) {
      await this.deps.storage.delete(state.key);
    }
    const upload = { ...this.claim, storageUploadId: state.uploadId };
    if (!(await store.clearImportUpload(this.deps.db, upload))) throw new ImportClaimLostError();
    this.state = null;
    this.deps.metrics?.recordingImportRestarts.inc({ reason });
    this.deps.logger.warn(
      { ...this.logContext(), reason, discardedBytes: heldBytes },
      "recording import restarts from byte 0",
    );
  }

  /** The recorded upload, if the store still holds exactly its recorded parts; else restarts. */
  private async checkRecordedUpload(): Promise<void> {
    const state = this.state;
    if (!state) return;
    if (state.validator === null) return this.restart("no_validator");
    let held: StoredPart[];
    try {
      held = await this.uploads.listParts(state.key, state.uploadId);
    } catch (error) {
      if (error instanceof NotFoundError) return this.restart("upload_gone");
      throw error;
    }
    if (!partsMatch(state.parts, held)) return this.restart("parts_mismatch");
    // Started, but not a part complete: a new upload records the source's answer afresh.
    if (state.parts.length === 0) return this.restart("nothing_stored");
  }

  private download(headers?: Record<string, string>): Promise<MediaResponse> {
    return openMediaDownload(this.location.url, {
      idleTimeoutMs: this.deps.idleTimeoutMs,
      signal: this.signal,
      ...(headers ? { headers } : {}),
    });
  }

  /**
   * The answer to continue from: from byte N of the recorded upload when the source proves it
   * sends the same object from there, else the whole object (the old upload aborted).
   */
  private async openSource(): Promise<MediaResponse | null> {
    await this.checkRecordedUpload();
    const state = this.state;
    const offset = state ? state.parts.reduce((sum, part) => sum + part.sizeBytes, 0) : 0;
    if (!state || offset === 0 || state.validator === null) return this.download();
    if (offset === state.sourceSize) {
      // Every byte is in the store already (the completion failed last time): nothing to fetch.
      this.startedAt = offset;
      this.deps.logger.info(
        { ...this.logContext(), resumedFromByte: offset, partsKept: state.parts.length },
        "recording import resumed: every part is stored, completing it",
      );
      return null;
    }
    let answer: MediaResponse;
    try {
      answer = await this.download({ Range: `bytes=${offset}-`, "If-Range": state.validator });
    } catch (error) {
      if (error instanceof Error && error.message === "media download answered 416") {
        await this.restart("unsatisfiable_range");
        return this.download();
      }
      throw error;
    }
    if (answer.status === 200) {
      // The source ignored the Range, or If-Range failed (the object changed): this answer is
      // the whole object, the one to copy from byte 0.
      await this.restart("range_ignored_or_changed");
      return answer;
    }
    const range = parseContentRange(answer.headers.get("content-range"));
    const etag = answer.headers.get("etag");
    const isSame =
      range !== null &&
      range.start === offset &&
      (range.total === null || state.sourceSize === null || range.total === state.sourceSize) &&
      (etag === null || !state.validator.startsWith('"') || etag === state.validator);
    if (!isSame) {
      answer.body.destroy();
      await this.restart("range_mismatch");
      return this.download();
    }
    this.startedAt = offset;
    this.deps.metrics?.recordingImportResumes.inc();
    this.deps.metrics?.recordingImportResumedBytes.inc(offset);
    this.deps.logger.info(
      {
        ...this.logContext(),
        resumedFromByte: offset,
        partsKept: state.parts.length,
        sourceSizeBytes: state.sourceSize,
      },
      "recording import resumed",
    );
    return answer;
  }

  /** A new upload for the whole object `answer` (a 200), recorded before its first part. */
  private async startUpload(answer: MediaResponse): Promise<UploadState> {
    if (answer.status !== 200) throw new Error("media download answered 206 to a full request");
    const length = answer.headers.get("content-length");
    const sourceSize = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    if (sourceSize !== null && sourceSize > this.deps.maxBytes) {
      throw new PayloadTooLargeError(
        `Recording is larger than the limit of ${this.deps.maxBytes} bytes`,
        { details: { maxBytes: this.deps.maxBytes } },
      );
    }
    const state: UploadState = {
      key: newStorageKey(this.job.organizationId),
      uploadId: "",
      validator: validatorOf(answer.headers),
      sourceSize,
      partSize: this.uploads.partSizeFor(this.deps.maxBytes),
      parts: [],
    };
    state.uploadId = await this.uploads.start(state.key, {
      contentType: this.location.contentType,
    });
    const isRecorded = await store.recordImportUpload(this.deps.db, {
      ...this.claim,
      now: this.deps.now(),
      uploadKey: state.key,
      storageUploadId: state.uploadId,
      sourceValidator: state.validator,
      sourceSizeBytes: sourceSize,
      partSizeBytes: state.partSize,
    });
    if (!isRecorded) {
      await this.uploads.abort(state.key, state.uploadId);
      throw new ImportClaimLostError();
    }
    return state;
  }

  /** Uploads one part and records it on the row (only while the claim holds). */
  private async storePart(state: UploadState, partNumber: number, body: Buffer): Promise<void> {
    const part = await this.uploads.uploadPart(state.key, state.uploadId, {
      partNumber,
      body,
      signal: this.signal,
    });
    const isRecorded = await store.recordImportPart(this.deps.db, {
      ...this.claim,
      storageUploadId: state.uploadId,
      part,
      now: this.deps.now(),
    });
    if (!isRecorded) throw new ImportClaimLostError();
    state.parts.push(part);
    // A meeting deleted meanwhile keeps no recording: stop downloading it now.
    const isLive = await store.hasLiveMeeting(this.deps.db, {
      organizationId: this.job.organizationId,
      meetingId: this.job.meetingId,
    });
    if (!isLive) throw new NotFoundError("The meeting was deleted; its recording is not copied");
  }

  /**
   * Streams the answer into parts of `partSize` (one uploading while the next fills), after
   * the parts already held. Returns the meter (bytes and hash of what this attempt downloaded).
   */
  private async copyBody(state: UploadState, answer: MediaResponse): Promise<MeteredStream> {
    const meter = new MeteredStream(this.deps.maxBytes);
    // The meter counts the object's bytes from the first; it hashes only this attempt's.
    meter.bytes = this.startedAt;
    // An error of the download (a reset, a cut body, the idle timeout) fails the meter with it.
    const body = pipeline(answer.body, meter, () => {});
    let nextPart = state.parts.length + 1;
    let chunks: Buffer[] = [];
    let buffered = 0;
    let uploading: Promise<void> = Promise.resolve();
    const flush = async (size: number) => {
      const joined = Buffer.concat(chunks, buffered);
      const partBody = joined.subarray(0, size);
      chunks = size < buffered ? [joined.subarray(size)] : [];
      buffered -= size;
      await uploading; // one part in flight at a time, in order
      const partNumber = nextPart++;
      uploading = this.storePart(state, partNumber, partBody);
      // Seen by the next flush or the end; never an unhandled rejection meanwhile.
      uploading.catch(() => {});
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        buffered += chunk.length;
        while (buffered >= state.partSize) await flush(state.partSize);
      }
      if (buffered > 0) await flush(buffered);
      await uploading;
    } catch (error) {
      answer.body.destroy();
      await uploading.catch(() => {});
      throw error;
    }
    return meter;
  }

  async run(): Promise<StorageObject> {
    const answer = await this.openSource();
    let meter: MeteredStream | null = null;
    try {
      const state = this.state ?? (this.state = await this.startUpload(answer!));
      if (answer) meter = await this.copyBody(state, answer);
      const total = state.parts.reduce((sum, part) => sum + part.sizeBytes, 0);
      if (total === 0) throw emptyRecording();
      if (state.sourceSize !== null && total !== state.sourceSize) {
        throw new Error(`media download ended at byte ${total} of ${state.sourceSize}`);
      }
      return await this.complete(state, this.startedAt === 0 ? meter : null, total);
    } finally {
      answer?.body.destroy();
    }
  }

  /** Assembles the parts and records the object, with the import's `done`, in one transaction. */
  private async complete(
    state: UploadState,
    meter: MeteredStream | null,
    total: number,
  ): Promise<StorageObject> {
    if (!(await store.renewImportClaim(this.deps.db, { ...this.claim, now: this.deps.now() })))
      throw new ImportClaimLostError();
    await this.uploads.complete(state.key, state.uploadId, state.parts).catch((error: unknown) => {
      // The upload is gone (aborted meanwhile): the next attempt starts again, it does not give
      // up as it would for a deleted meeting (NotFoundError).
      if (error instanceof NotFoundError)
        throw new Error("the import's upload is gone from the store");
      throw error;
    });
    try {
      // A resumed copy hashed only its own bytes: the object's SHA-256 is read back from the
      // store (which also proves the assembled object is the size the source announced).
      const digest = meter
        ? { sizeBytes: meter.bytes, sha256: meter.digest() }
        : await digestStoredObject(this.deps.storage, state.key).catch((error: unknown) => {
            if (error instanceof NotFoundError) throw new Error("the assembled object is missing");
            throw error;
          });
      if (digest.sizeBytes !== total) {
        throw new Error(`the stored object has ${digest.sizeBytes} bytes, not ${total}`);
      }
      const { object } = await recordStoredRecording(
        this.deps,
        {
          organizationId: this.job.organizationId,
          meetingId: this.job.meetingId,
          key: state.key,
          source: "recall",
          contentType: this.location.contentType,
          sizeBytes: digest.sizeBytes,
          sha256: digest.sha256,
        },
        {
          claim: async (tx) => {
            if (!(await store.lockHeldImport(tx, this.claim))) throw new ImportClaimLostError();
          },
          recorded: async (tx, created) => {
            await store.markImportDone(tx, { ...this.claim, storageObjectId: created.id });
          },
        },
      );
      return object;
    } catch (error) {
      // Nothing refers to the object: it is this import's alone.
      await this.deps.storage.delete(state.key).catch((cleanupError: unknown) => {
        this.deps.logger.error(
          { err: cleanupError, importId: this.job.id },
          "could not delete an unrecorded import",
        );
      });
      throw error;
    }
  }
}

/**
 * Copies the media of `job` (claimed by the caller) into the object store, resuming the upload
 * its earlier attempts left. Returns the stored object, recorded with the import's `done`.
 */
export function copyResumably(
  deps: ResumableCopyDeps,
  job: RecordingImport,
  location: MediaLocation,
  signal: AbortSignal,
): Promise<StorageObject> {
  return new ResumableCopy(deps, job, location, signal).run();
}
