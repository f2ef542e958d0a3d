/* eslint-disable max-lines -- the whole S3 driver of the StorageProvider seam (multipart upload, ranged and presigned reads, batch deletes, start-up check); split, its one contract would be spread over files */
import { Readable } from "node:stream";
import { pipeline } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListParts,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { isAppError, NotFoundError, ServiceUnavailableError } from "@zigznote/shared";
import {
  isStorageKey,
  MeteredStream,
  type ByteRange,
  type DeleteFailure,
  type DirectUploadPlan,
  type PresignedPart,
  type PresignedTransfers,
  type PutResult,
  type ResumableUploads,
  type StorageProvider,
  type StoredPart,
} from "./storage";

/**
 * Recordings in an S3-compatible bucket (AWS S3, Cloudflare R2, GCS interoperability, MinIO,
 * Ceph) through the official AWS SDK v3. Streamed uploads are multipart uploads
 * (`@aws-sdk/lib-storage`): memory stays at a few parts whatever the size, and a failed or
 * refused upload is aborted, so no object and no parts remain. Downloads and direct uploads are
 * presigned URLs: the bytes go between the client and the store.
 *
 * Checksums: since 2025 the SDK adds CRC32 checksums to every upload it can and asks for them on
 * every download. Third-party servers often reject the trailing-checksum encoding, and a
 * presigned PUT would carry the checksum of an empty body (so AWS itself refuses the real
 * bytes). The client therefore sends checksums only where an operation requires one
 * (`DeleteObjects`), as the SDK did before, which works with AWS and every compatible server; the
 * API computes its own SHA-256 of every object anyway.
 */

export interface S3StorageSettings {
  bucket: string;
  region: string;
  /** Unset for AWS; the server's URL otherwise. */
  endpoint?: string;
  /** `https://host/bucket/key` rather than `https://bucket.host/key` (most compatible servers). */
  forcePathStyle: boolean;
  /** Prefix of every object key ("" or ending with "/"). */
  keyPrefix: string;
  /**
   * Explicit credentials (tests only). Unset: the SDK's default chain (AWS_ACCESS_KEY_ID and
   * AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, container and instance roles).
   */
  credentials?: S3ClientConfig["credentials"];
  /** Part size of streamed uploads (default 8 MiB, or more when `maxBytes` needs it). */
  partSizeBytes?: number;
  /** Parts of one streamed upload in flight at once (default 4). */
  queueSize?: number;
}

const MIB = 1024 * 1024;
/** S3 allows 10,000 parts per upload, each at least 5 MiB but the last. */
const MAX_PARTS = 10_000;
const DEFAULT_PART_SIZE = 8 * MIB;
/** `DeleteObjects` takes at most 1000 keys a call. */
const DELETE_BATCH = 1000;
/** How long a client of the store waits for a connection, and for a silent socket. */
const CONNECTION_TIMEOUT_MS = 5_000;
const SOCKET_TIMEOUT_MS = 60_000;
/** What a client is told to wait before retrying when the store failed. */
const RETRY_AFTER_SECONDS = 5;

/** The part size for an object of up to `sizeBytes`: 8 MiB, or more to stay within 10,000 parts. */
export function partSizeFor(sizeBytes: number, minimum = DEFAULT_PART_SIZE): number {
  return Math.max(minimum, Math.ceil(sizeBytes / MAX_PARTS / MIB) * MIB);
}

/** The parts of an object of `sizeBytes` cut into `partSizeBytes` (the last may be shorter). */
export function partLayout(plan: Pick<DirectUploadPlan, "sizeBytes" | "partSizeBytes">) {
  const count = Math.max(1, Math.ceil(plan.sizeBytes / plan.partSizeBytes));
  return Array.from({ length: count }, (_, index) => {
    const offset = index * plan.partSizeBytes;
    return {
      partNumber: index + 1,
      offset,
      sizeBytes: Math.min(plan.partSizeBytes, plan.sizeBytes - offset),
    };
  });
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

function errorShape(error: unknown): SdkErrorShape {
  return typeof error === "object" && error !== null ? error : {};
}

function statusOf(error: unknown): number | undefined {
  return errorShape(error).$metadata?.httpStatusCode;
}

/** The store says the object (or the multipart upload) is not there (not the bucket). */
function isMissing(error: unknown): boolean {
  const { name } = errorShape(error);
  if (name === "NoSuchBucket") return false;
  return (
    name === "NoSuchKey" ||
    name === "NotFound" ||
    name === "NoSuchUpload" ||
    statusOf(error) === 404
  );
}

/** 503 STORAGE_UNAVAILABLE: the store failed or did not answer; the cause is logged, not shown. */
function storageUnavailable(operation: string, cause: unknown): ServiceUnavailableError {
  return new ServiceUnavailableError(`The recording store did not complete the ${operation}`, {
    code: "STORAGE_UNAVAILABLE",
    retryAfterSeconds: RETRY_AFTER_SECONDS,
    cause,
  });
}

/** Why the bucket cannot be used, naming the variable to fix (start-up stops with it). */
export class StorageConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StorageConfigError";
  }
}

/** The bucket, reached through the AWS SDK; see the module comment. */
export class S3Storage implements StorageProvider {
  readonly driver = "s3";
  readonly client: S3Client;
  readonly bucket: string;
  readonly keyPrefix: string;
  readonly presigned: PresignedTransfers;
  readonly resumable: ResumableUploads;
  private readonly settings: S3StorageSettings;
  private readonly queueSize: number;

  constructor(settings: S3StorageSettings) {
    this.settings = settings;
    this.bucket = settings.bucket;
    this.keyPrefix = settings.keyPrefix;
    this.queueSize = settings.queueSize ?? 4;
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle,
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
      // See the module comment: checksums only where an operation requires one.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: {
        connectionTimeout: CONNECTION_TIMEOUT_MS,
        requestTimeout: SOCKET_TIMEOUT_MS,
      },
    });
    this.presigned = this.createPresignedTransfers();
    this.resumable = this.createResumableUploads();
  }

  /** The bucket's key of a storage key. */
  objectKey(key: string): string {
    if (!isStorageKey(key)) throw new Error(`invalid storage key: ${key}`);
    return `${this.keyPrefix}${key}`;
  }

  /** The storage key of a bucket key of ours, or null for anything else in the bucket. */
  storageKeyOf(objectKey: string): string | null {
    if (!objectKey.startsWith(this.keyPrefix)) return null;
    const key = objectKey.slice(this.keyPrefix.length);
    return isStorageKey(key) ? key : null;
  }

  /**
   * HeadBucket: the bucket exists and these credentials may use it. Throws StorageConfigError
   * naming the variable to fix.
   */
  async assertBucketReachable(timeoutMs = 15_000): Promise<void> {
    const { bucket } = this;
    const where = this.settings.endpoint ? ` at S3_ENDPOINT=${this.settings.endpoint}` : "";
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }), {
        abortSignal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const shape = errorShape(error);
      const status = statusOf(error);
      if (shape.name === "CredentialsProviderError") {
        throw new StorageConfigError(
          "STORAGE_DRIVER=s3: no AWS credentials were found. Set AWS_ACCESS_KEY_ID and " +
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run with an instance or task role.",
          { cause: error },
        );
      }
      if (status === 404 || shape.name === "NotFound" || shape.name === "NoSuchBucket") {
        throw new StorageConfigError(
          `S3_BUCKET: the bucket "${bucket}" does not exist${where}. Create it or fix S3_BUCKET.`,
          { cause: error },
        );
      }
      if (status === 301 || status === 307 || shape.name === "PermanentRedirect") {
        const actual = shape.$response?.headers?.["x-amz-bucket-region"];
        throw new StorageConfigError(
          `S3_REGION: the bucket "${bucket}" is in another region` +
            `${actual ? ` (${actual})` : ""} than S3_REGION=${this.settings.region}.`,
          { cause: error },
        );
      }
      if (status === 400 && shape.name === "AuthorizationHeaderMalformed") {
        throw new StorageConfigError(
          `S3_REGION: the store refused the region S3_REGION=${this.settings.region}.`,
          { cause: error },
        );
      }
      if (status === 401 || status === 403) {
        throw new StorageConfigError(
          `S3_BUCKET: access to the bucket "${bucket}"${where} was refused. Check the ` +
            "credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the " +
            "instance role) and that they may read and write this bucket.",
          { cause: error },
        );
      }
      if (status === undefined) {
        throw new StorageConfigError(
          `S3_ENDPOINT: the object store${where || " (AWS)"} could not be reached for the ` +
            `bucket "${bucket}": ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
      throw new StorageConfigError(
        `S3_BUCKET: checking the bucket "${bucket}"${where} failed with HTTP ${status}.`,
        { cause: error },
      );
    }
  }

  /** Sends a call to the store; a failure becomes 503 STORAGE_UNAVAILABLE. */
  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (isAppError(error)) throw error;
      throw storageUnavailable(operation, error);
    }
  }

  /** See StorageProvider.put; `metadata` becomes the object's `x-amz-meta-*` headers. */
  async put(
    key: string,
    body: Readable,
    options: { maxBytes: number; contentType?: string; metadata?: Record<string, string> },
  ): Promise<PutResult> {
    const meter = new MeteredStream(options.maxBytes);
    // The first error of the body or of the meter (too large, interrupted, empty) is the answer,
    // whatever the SDK then reports about the upload it aborts.
    let bodyError: Error | undefined;
    pipeline(body, meter, (error) => {
      if (error) bodyError ??= error;
    });
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.bucket,
        Key: this.objectKey(key),
        Body: meter,
        ...(options.contentType ? { ContentType: options.contentType } : {}),
        ...(options.metadata ? { Metadata: options.metadata } : {}),
      },
      partSize: this.settings.partSizeBytes ?? partSizeFor(options.maxBytes),
      queueSize: this.queueSize,
      // On any failure the multipart upload is aborted: no parts are left behind.
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      if (!body.destroyed) body.destroy();
      if (!meter.destroyed) meter.destroy();
      if (bodyError !== undefined) throw bodyError;
      if (isAppError(error)) throw error;
      throw storageUnavailable("upload", error);
    }
    return { sizeBytes: meter.bytes, sha256: meter.digest() };
  }

  async get(key: string, range?: ByteRange): Promise<{ body: Readable; sizeBytes: number }> {
    let response;
    try {
      response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
    } catch (error) {
      if (isMissing(error)) throw new NotFoundError("Recording not found");
      throw storageUnavailable("download", error);
    }
    const body = response.Body;
    if (!(body instanceof Readable)) throw storageUnavailable("download", "no body stream");
    // "bytes 0-9/1234": the object's size follows the slash; without a range it is the length.
    const total = response.ContentRange?.split("/")[1];
    const sizeBytes = total && total !== "*" ? Number(total) : Number(response.ContentLength);
    return { body, sizeBytes };
  }

  async delete(key: string): Promise<void> {
    await this.call("deletion", () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })),
    );
  }

  async deleteMany(keys: readonly string[]): Promise<{ failed: DeleteFailure[] }> {
    const failed: DeleteFailure[] = [];
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      let errors;
      try {
        ({ Errors: errors } = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.objectKey(key) })), Quiet: true },
          }),
        ));
      } catch (error) {
        // The whole batch failed: every key of it is retried on the next run.
        for (const key of batch) failed.push({ key, error: storageUnavailable("deletion", error) });
        continue;
      }
      for (const entry of errors ?? []) {
        // A key that is already gone counts as deleted.
        if (entry.Code === "NoSuchKey") continue;
        const key = entry.Key ? this.storageKeyOf(entry.Key) : null;
        if (key === null) continue;
        failed.push({ key, error: new Error(`${entry.Code ?? "Error"}: ${entry.Message ?? ""}`) });
      }
    }
    return { failed };
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  /** The object's size and user metadata (`x-amz-meta-*`), or null when there is none. */
  async stat(key: string): Promise<{ sizeBytes: number; metadata: Record<string, string> } | null> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      return { sizeBytes: Number(head.ContentLength ?? 0), metadata: head.Metadata ?? {} };
    } catch (error) {
      if (isMissing(error)) return null;
      throw storageUnavailable("lookup of an object", error);
    }
  }

  /**
   * Multipart uploads under the key prefix begun before `startedBefore` and never completed: a
   * crashed instance's streamed uploads, or direct uploads whose row is gone. Uploads of keys
   * this API would not make (another application's, in a shared bucket) are left alone.
   */
  async abortIncompleteUploads(
    startedBefore: Date,
    options: { keepUploadIds?: ReadonlySet<string> } = {},
  ): Promise<number> {
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.call("listing of unfinished uploads", () =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(this.keyPrefix ? { Prefix: this.keyPrefix } : {}),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        ),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated) continue;
        if (upload.Initiated >= startedBefore || this.storageKeyOf(upload.Key) === null) continue;
        // A resumable copy still under way keeps its upload however long it has been open.
        if (options.keepUploadIds?.has(upload.UploadId)) continue;
        await this.abortMultipart(upload.Key, upload.UploadId);
        aborted += 1;
      }
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
      if (!keyMarker && !uploadIdMarker) break;
    }
    return aborted;
  }

  /** AbortMultipartUpload of a bucket key; an upload that is already gone is fine. */
  /** Starts a multipart upload at storage key `key`; its upload id. */
  private async startMultipart(key: string, contentType: string): Promise<string> {
    const created = await this.call("start of an upload", () =>
      this.client.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          ContentType: contentType,
        }),
      ),
    );
    if (!created.UploadId) throw storageUnavailable("start of an upload", "no UploadId");
    return created.UploadId;
  }

  private async abortMultipart(objectKey: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({
          Bucket: this.bucket,
          Key: objectKey,
          UploadId: uploadId,
        }),
      );
    } catch (error) {
      if (!isMissing(error)) throw storageUnavailable("abort of an upload", error);
    }
  }

  /**
   * Multipart uploads driven part by part (recording imports): unlike `put`, a failure leaves
   * the upload and its parts in place for the next attempt; its owner aborts it when it ends.
   */
  private createResumableUploads(): ResumableUploads {
    const { client, bucket } = this;
    return {
      partSizeFor: (maxBytes) => this.settings.partSizeBytes ?? partSizeFor(maxBytes),
      start: (key, options) => this.startMultipart(key, options.contentType),
      listParts: (key, uploadId) => this.presigned.listParts(key, uploadId),
      uploadPart: async (key, uploadId, part) => {
        const sent = await this.call("upload of a part", () =>
          client.send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: this.objectKey(key),
              UploadId: uploadId,
              PartNumber: part.partNumber,
              Body: part.body,
              ContentLength: part.body.length,
            }),
            part.signal ? { abortSignal: part.signal } : {},
          ),
        );
        if (!sent.ETag) throw storageUnavailable("upload of a part", "no ETag");
        return { partNumber: part.partNumber, sizeBytes: part.body.length, etag: sent.ETag };
      },
      complete: (key, uploadId, parts) => this.presigned.completeUpload(key, uploadId, parts),
      abort: (key, uploadId) => this.abortMultipart(this.objectKey(key), uploadId),
    };
  }

  private createPresignedTransfers(): PresignedTransfers {
    const { client, bucket } = this;
    return {
      downloadUrl: (key, options) =>
        this.call("signing of a download", () =>
          getSignedUrl(
            client,
            new GetObjectCommand({
              Bucket: bucket,
              Key: this.objectKey(key),
              ResponseContentType: options.contentType,
              ResponseContentDisposition: `attachment; filename="${options.filename}"`,
            }),
            { expiresIn: options.expiresInSeconds },
          ),
        ),

      // Always a multipart upload, even of one part: a part URL works only while its upload is
      // open, so once the upload is completed (or aborted) a URL still within its lifetime can
      // no longer write. A presigned PutObject could: it would swap a recorded object's bytes
      // for others, or bring back one deleted since, outside every row (never counted, never
      // deleted). S3 takes a last (here only) part of any size.
      startUpload: (key, plan) => this.startMultipart(key, plan.contentType),

      uploadUrls: (key, upload) =>
        this.call("signing of an upload", async () => {
          const objectKey = this.objectKey(key);
          const { plan, storageUploadId, expiresInSeconds } = upload;
          if (storageUploadId === null) {
            // One PUT (uploads started before every direct upload was multipart): its length
            // and type are signed, so the store takes only those bytes.
            const url = await getSignedUrl(
              client,
              new PutObjectCommand({
                Bucket: bucket,
                Key: objectKey,
                ContentType: plan.contentType,
                ContentLength: plan.sizeBytes,
              }),
              { expiresIn: expiresInSeconds, signableHeaders: new Set(["content-type"]) },
            );
            return [{ partNumber: 1, url, offset: 0, sizeBytes: plan.sizeBytes }];
          }
          return Promise.all(
            partLayout(plan).map(async (part): Promise<PresignedPart> => ({
              ...part,
              url: await getSignedUrl(
                client,
                new UploadPartCommand({
                  Bucket: bucket,
                  Key: objectKey,
                  UploadId: storageUploadId,
                  PartNumber: part.partNumber,
                  ContentLength: part.sizeBytes,
                }),
                { expiresIn: expiresInSeconds },
              ),
            })),
          );
        }),

      listParts: async (key, storageUploadId) => {
        const parts: StoredPart[] = [];
        try {
          const pages = paginateListParts(
            { client },
            { Bucket: bucket, Key: this.objectKey(key), UploadId: storageUploadId },
          );
          for await (const page of pages) {
            for (const part of page.Parts ?? []) {
              if (part.PartNumber === undefined || !part.ETag) continue;
              parts.push({
                partNumber: part.PartNumber,
                sizeBytes: Number(part.Size ?? 0),
                etag: part.ETag,
              });
            }
          }
        } catch (error) {
          if (isMissing(error)) throw new NotFoundError("The upload is no longer in the store");
          throw storageUnavailable("listing of uploaded parts", error);
        }
        return parts.sort((a, b) => a.partNumber - b.partNumber);
      },

      completeUpload: async (key, storageUploadId, parts) => {
        try {
          await client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: this.objectKey(key),
              UploadId: storageUploadId,
              MultipartUpload: {
                Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })),
              },
            }),
          );
        } catch (error) {
          if (isMissing(error)) throw new NotFoundError("The upload is no longer in the store");
          throw storageUnavailable("completion of an upload", error);
        }
      },

      head: async (key) => {
        try {
          const head = await client.send(
            new HeadObjectCommand({ Bucket: bucket, Key: this.objectKey(key) }),
          );
          return { sizeBytes: Number(head.ContentLength ?? 0), contentType: head.ContentType };
        } catch (error) {
          if (isMissing(error)) return null;
          throw storageUnavailable("lookup of an object", error);
        }
      },

      abortUpload: async (key, storageUploadId) => {
        const objectKey = this.objectKey(key);
        if (storageUploadId !== null) await this.abortMultipart(objectKey, storageUploadId);
        // A single PUT (or a completion racing the abort) may have left the object itself.
        await this.delete(key);
      },
    };
  }
}
