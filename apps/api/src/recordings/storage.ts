import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { NotFoundError, PayloadTooLargeError } from "@zigznote/shared";

/**
 * Where recordings live. The default keeps them on a local disk under STORAGE_DIR; an
 * S3-compatible bucket can implement the same interface (put streams a multipart upload, get a
 * ranged GET, delete ignores NoSuchKey) without touching callers.
 */
export interface StorageProvider {
  /**
   * Streams `body` into a new object at `key`. Never holds the whole object in memory. Refuses
   * with PayloadTooLargeError past `maxBytes`, leaving nothing behind. The object becomes visible
   * only once complete.
   */
  put(key: string, body: Readable, options: { maxBytes: number }): Promise<PutResult>;
  /**
   * A stream of the object (or of the inclusive byte `range` of it) and the object's full size;
   * NotFoundError when there is none.
   */
  get(key: string, range?: ByteRange): Promise<{ body: Readable; sizeBytes: number }>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
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

/** Counts and hashes the bytes going through; fails once more than `maxBytes` have passed. */
class MeteredStream extends Transform {
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

/** Objects as files under one root folder; writes go to a temporary file renamed into place. */
export class LocalDiskStorage implements StorageProvider {
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
    try {
      await pipeline(body, meter, createWriteStream(temporary, { flags: "wx" }));
      await rename(temporary, target);
    } catch (error) {
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
