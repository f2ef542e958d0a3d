import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NotFoundError, PayloadTooLargeError } from "@zigznote/shared";
import pLimit from "p-limit";

/**
 * Where recordings live: the one seam between the recordings feature and the bytes. Two drivers
 * implement it, chosen by STORAGE_DRIVER: `LocalDiskStorage` (files under STORAGE_DIR, the
 * default) and `S3Storage` (an S3-compatible bucket, `s3Storage.ts`). Object stores also hand out
 * presigned URLs (`presigned`), so that downloads and direct uploads bypass the API.
 */
export interface StorageProvider {
  /** Which driver this is (logs, health, the migration command). */
  readonly driver: "local" | "s3";
  /**
   * Streams `body` into a new object at `key`. Never holds the whole object in memory. Refuses
   * with PayloadTooLargeError past `maxBytes`, leaving nothing behind. The object becomes visible
   * only once complete.
   */
  put(
    key: string,
    body: Readable,
    options: { maxBytes: number; contentType?: string },
  ): Promise<PutResult>;
  /**
   * A stream of the object (or of the inclusive byte `range` of it) and the object's full size;
   * NotFoundError when there is none.
   */
  get(key: string, range?: ByteRange): Promise<{ body: Readable; sizeBytes: number }>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Deletes many objects (in batches where the store has a bulk call); a missing object counts as
   * deleted. Returns the keys that could not be deleted, with why; the others are gone.
   */
  deleteMany(keys: readonly string[]): Promise<{ failed: DeleteFailure[] }>;
  exists(key: string): Promise<boolean>;
  /**
   * Ends uploads begun before `startedBefore` that never completed (a crash or a lost client
   * left them): their parts or temporary files are deleted. Returns how many were ended.
   */
  abortIncompleteUploads(
    startedBefore: Date,
    options?: { keepUploadIds?: ReadonlySet<string> },
  ): Promise<number>;
  /** Presigned transfers: only object stores have them (undefined on local disk). */
  readonly presigned?: PresignedTransfers;
  /**
   * Uploads written part by part that stay open between attempts (object stores: a multipart
   * upload), so that an interrupted copy resumes after its last complete part. Undefined on
   * local disk, where a copy starts again from its first byte.
   */
  readonly resumable?: ResumableUploads;
}

/**
 * An object built from parts over several attempts, each part kept by the store once uploaded;
 * the object is visible only once completed. Keys are storage keys; upload ids the store's.
 */
export interface ResumableUploads {
  /** The part size (every part but the last) for an object of at most `maxBytes`. */
  partSizeFor(maxBytes: number): number;
  /** Starts an upload at `key`; returns its id. */
  start(key: string, options: { contentType: string }): Promise<string>;
  /** The parts the store holds, by part number; NotFoundError when the upload is gone. */
  listParts(key: string, uploadId: string): Promise<StoredPart[]>;
  /** Stores one part (replacing any earlier part of that number). */
  uploadPart(
    key: string,
    uploadId: string,
    part: { partNumber: number; body: Buffer; signal?: AbortSignal },
  ): Promise<StoredPart>;
  /** Assembles `parts` into the object; NotFoundError when the upload is gone. */
  complete(key: string, uploadId: string, parts: StoredPart[]): Promise<void>;
  /** Abandons the upload and its parts (an upload already gone is fine). */
  abort(key: string, uploadId: string): Promise<void>;
}

export interface DeleteFailure {
  key: string;
  error: unknown;
}

/** One part of a direct upload: where to PUT which bytes (`Content-Length` is signed). */
export interface PresignedPart {
  partNumber: number;
  url: string;
  /** The first byte of the part in the object, and how many bytes it holds. */
  offset: number;
  sizeBytes: number;
}

/** A part the store holds for an unfinished multipart upload. */
export interface StoredPart {
  partNumber: number;
  sizeBytes: number;
  etag: string;
}

/** What a direct upload's object should be: its type, its exact size and its part layout. */
export interface DirectUploadPlan {
  contentType: string;
  sizeBytes: number;
  partSizeBytes: number;
}

/**
 * URLs that let a client move bytes to and from the object store without the API in the path,
 * and what the API needs to finish (or abandon) such an upload. Keys are storage keys.
 */
export interface PresignedTransfers {
  /** A GET URL for `expiresInSeconds` that makes the store answer with this type and filename. */
  downloadUrl(
    key: string,
    options: { contentType: string; filename: string; expiresInSeconds: number },
  ): Promise<string>;
  /**
   * Starts a direct upload of `plan` and returns its store id: a multipart upload, even of one
   * part, so that no URL can write once it is completed or aborted. (Rows of uploads started
   * before that have no id: a single PUT, which `uploadUrls` still signs.)
   */
  startUpload(key: string, plan: DirectUploadPlan): Promise<string>;
  /** Presigned PUT URLs for every part of the upload (one URL for a single PUT). */
  uploadUrls(
    key: string,
    upload: { storageUploadId: string | null; plan: DirectUploadPlan; expiresInSeconds: number },
  ): Promise<PresignedPart[]>;
  /** The parts the store holds so far; NotFoundError when the multipart upload is gone. */
  listParts(key: string, storageUploadId: string): Promise<StoredPart[]>;
  /** Assembles the parts into the object (visible from then on). */
  completeUpload(key: string, storageUploadId: string, parts: StoredPart[]): Promise<void>;
  /** The object's size and type, or null when there is none. */
  head(key: string): Promise<{ sizeBytes: number; contentType: string | undefined } | null>;
  /** Abandons the upload: its parts and any object already at `key` are deleted. */
  abortUpload(key: string, storageUploadId: string | null): Promise<void>;
}

/** Inclusive byte positions, as in an HTTP Range header. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutResult {
  sizeBytes: number;
  sha256: string;
}

/**
 * A fresh object key: the organization (for operators and bulk deletion) and 192 random bits,
 * so keys cannot be guessed or derived from ids clients see.
 */
export function newStorageKey(organizationId: string, kind = "recordings"): string {
  return `${organizationId}/${kind}/${randomBytes(24).toString("base64url")}`;
}

const KEY_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/;

/** True for a key this API could have made (the drivers refuse any other). */
export function isStorageKey(key: string): boolean {
  return KEY_PATTERN.test(key);
}

/** Parallel file deletions of one `deleteMany` on local disk. */
const LOCAL_DELETE_CONCURRENCY = 16;

/** Counts and hashes the bytes going through; fails once more than `maxBytes` have passed. */
export class MeteredStream extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null, data?: Buffer) => void,
  ): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      callback(
        new PayloadTooLargeError(`Recording is larger than the limit of ${this.maxBytes} bytes`, {
          details: {
            maxBytes: this.maxBytes,
          },
        }),
      );
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest("hex");
  }
}

/** The size and SHA-256 of what `storage` holds at `key`, read through once. */
export async function digestStoredObject(
  storage: Pick<StorageProvider, "get">,
  key: string,
): Promise<PutResult> {
  const { body } = await storage.get(key);
  const hash = createHash("sha256");
  let sizeBytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    sizeBytes += chunk.length;
  }
  return { sizeBytes, sha256: hash.digest("hex") };
}

/** Objects as files under one root folder; writes go to a temporary file renamed into place. */
export class LocalDiskStorage implements StorageProvider {
  readonly driver = "local";
  private readonly root: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.tmpDir = path.join(this.root, ".tmp");
  }

  private pathOf(key: string): string {
    if (!KEY_PATTERN.test(key)) throw new Error(`invalid storage key: ${key}`);
    return path.join(this.root, key);
  }

  async put(key: string, body: Readable, options: { maxBytes: number }): Promise<PutResult> {
    const target = this.pathOf(key);
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(path.dirname(target), { recursive: true });
    const temporary = path.join(this.tmpDir, `${randomBytes(12).toString("hex")}.part`);
    const meter = new MeteredStream(options.maxBytes);
    const file = createWriteStream(temporary, { flags: "wx" });
    try {
      await pipeline(body, meter, file);
      await rename(temporary, target);
    } catch (error) {
      // A body refused before the file was opened (empty, over the limit) fails the pipeline
      // while the open is still under way: it creates the file after a removal made now. The
      // stream closes once its open settled, so the removal waits for that.
      if (!file.closed) await new Promise<void>((resolve) => file.once("close", () => resolve()));
      await rm(temporary, { force: true });
      // Drain nothing more from the client: the caller answers and the socket is closed.
      if (!body.destroyed) body.destroy();
      throw error;
    }
    return { sizeBytes: meter.bytes, sha256: meter.digest() };
  }

  async get(key: string, range?: ByteRange): Promise<{ body: Readable; sizeBytes: number }> {
    const file = this.pathOf(key);
    let sizeBytes: number;
    try {
      sizeBytes = (await stat(file)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        throw new NotFoundError("Recording not found");
      throw error;
    }
    return {
      body: createReadStream(file, range ? { start: range.start, end: range.end } : {}),
      sizeBytes,
    };
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }

  async deleteMany(keys: readonly string[]): Promise<{ failed: DeleteFailure[] }> {
    const limit = pLimit(LOCAL_DELETE_CONCURRENCY);
    const results = await Promise.allSettled(keys.map((key) => limit(() => this.delete(key))));
    const failed: DeleteFailure[] = [];
    results.forEach((result, index) => {
      if (result.status === "rejected") failed.push({ key: keys[index]!, error: result.reason });
    });
    return { failed };
  }

  /** Temporary files of uploads that a crash interrupted (a finished upload renames its file). */
  async abortIncompleteUploads(startedBefore: Date): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.tmpDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    let removed = 0;
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      const info = await stat(file).catch(() => null);
      if (info && info.mtime < startedBefore) {
        await rm(file, { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await stat(this.pathOf(key));
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
  }
}
