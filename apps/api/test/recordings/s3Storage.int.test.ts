import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import {
  CreateMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { loadConfig } from "../../src/config";
import { S3Storage, StorageConfigError } from "../../src/recordings";
import { newStorageKey } from "../../src/recordings";
import { createStorage } from "../../src/recordings";
import { S3_TEST_CREDENTIALS, startS3Server, type S3TestServer } from "../support/fakes/s3Server";

const MIB = 1024 * 1024;
const ORG = "0b7a3c1e-5f3d-4a38-9e57-3f0c1c7d2a10";
const HOUR = 60 * 60 * 1000;

let s3: S3TestServer;
let storage: S3Storage;

beforeAll(async () => {
  s3 = await startS3Server();
  // Small parts, so that a few MiB already make a multipart upload.
  storage = s3.storage({ keyPrefix: "tenant-a/recordings/", partSizeBytes: 5 * MIB });
});
afterAll(async () => {
  storage.client.destroy();
  await s3.close();
});

/** A driver on the test bucket with no key prefix and the SDK's default part size. */
function driver(overrides: Partial<ConstructorParameters<typeof S3Storage>[0]> = {}): S3Storage {
  return new S3Storage({
    bucket: s3.bucket,
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    keyPrefix: "",
    credentials: S3_TEST_CREDENTIALS,
    ...overrides,
  });
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** A body that yields `data` in 1 MiB pieces, then fails with `error` if given. */
function chunked(data: Buffer, error?: Error): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += MIB) {
        yield data.subarray(offset, offset + MIB);
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (error) throw error;
    })(),
  );
}

describe("S3Storage (against s3rver)", () => {
  it("streams a multipart upload in and ranged reads out, with its size, hash and type", async () => {
    const data = randomBytes(12 * MIB + 12345);
    const key = newStorageKey(ORG);
    const stored = await storage.put(key, chunked(data), {
      maxBytes: 20 * MIB,
      contentType: "video/mp4",
    });
    expect(stored).toEqual({ sizeBytes: data.length, sha256: sha256(data) });
    expect(await s3.objectKeys()).toContain(`tenant-a/recordings/${key}`);
    expect(await s3.openUploads()).toEqual([]);

    const whole = await storage.get(key);
    expect(whole.sizeBytes).toBe(data.length);
    expect((await buffer(whole.body)).equals(data)).toBe(true);
    const part = await storage.get(key, { start: 5 * MIB - 10, end: 5 * MIB + 9 });
    expect(part.sizeBytes).toBe(data.length);
    expect((await buffer(part.body)).equals(data.subarray(5 * MIB - 10, 5 * MIB + 10))).toBe(true);
    expect(await storage.presigned.head(key)).toEqual({
      sizeBytes: data.length,
      contentType: "video/mp4",
    });
    await expect(storage.get(newStorageKey(ORG))).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("refuses an upload over the limit while streaming, leaving no object and no parts", async () => {
    const key = newStorageKey(ORG);
    await expect(
      storage.put(key, chunked(randomBytes(11 * MIB)), { maxBytes: 10 * MIB }),
    ).rejects.toMatchObject({ code: "PAYLOAD_TOO_LARGE", status: 413 });
    expect(await storage.exists(key)).toBe(false);
    expect(await s3.openUploads()).toEqual([]);
    expect(s3.uploadFolders()).toEqual([]);
  });

  it("aborts the multipart upload when the body fails half-way (a client hung up)", async () => {
    const key = newStorageKey(ORG);
    const hungUp = Object.assign(new Error("The upload was interrupted"), { code: "X" });
    await expect(
      storage.put(key, chunked(randomBytes(11 * MIB), hungUp), { maxBytes: 50 * MIB }),
    ).rejects.toBe(hungUp);
    expect(await storage.exists(key)).toBe(false);
    expect(await s3.openUploads()).toEqual([]);
    expect(s3.uploadFolders()).toEqual([]);
  });

  it("deletes in batches of up to 1000 keys, counting a missing object as deleted", async () => {
    const keys = Array.from({ length: 1003 }, () => newStorageKey(ORG));
    await Promise.all(
      keys.slice(0, 40).map((key) =>
        storage.put(key, Readable.from([Buffer.from(key)]), {
          maxBytes: 1000,
        }),
      ),
    );
    const before = await s3.objectKeys("tenant-a/");
    expect(keys.slice(0, 40).every((key) => before.includes(`tenant-a/recordings/${key}`))).toBe(
      true,
    );
    // 1003 keys, 963 of which never existed: two DeleteObjects calls, nothing failed.
    const batches: number[] = [];
    storage.client.middlewareStack.add(
      (next, context) => (args) => {
        const input = args.input as { Delete?: { Objects?: unknown[] } };
        if (context.commandName === "DeleteObjectsCommand") {
          batches.push(input.Delete?.Objects?.length ?? 0);
        }
        return next(args);
      },
      { step: "initialize", name: "countDeleteBatches" },
    );
    expect(await storage.deleteMany(keys)).toEqual({ failed: [] });
    storage.client.middlewareStack.remove("countDeleteBatches");
    expect(batches).toEqual([1000, 3]);
    const after = await s3.objectKeys("tenant-a/");
    expect(keys.some((key) => after.includes(`tenant-a/recordings/${key}`))).toBe(false);
  });

  it("reports every key of a batch the store did not take, to be retried", async () => {
    const unreachable = driver({ endpoint: "http://127.0.0.1:9" });
    const keys = [newStorageKey(ORG), newStorageKey(ORG)];
    const { failed } = await unreachable.deleteMany(keys);
    expect(failed.map((failure) => failure.key)).toEqual(keys);
    expect(failed[0]!.error).toMatchObject({ code: "STORAGE_UNAVAILABLE", status: 503 });
    unreachable.client.destroy();
  });

  it("aborts unfinished multipart uploads older than the cutoff, and only ours", async () => {
    const ours = `tenant-a/recordings/${newStorageKey(ORG)}`;
    const foreign = "tenant-a/recordings/not-a-key-of-ours.txt";
    for (const Key of [ours, foreign]) {
      const { UploadId } = await s3.client.send(
        new CreateMultipartUploadCommand({ Bucket: s3.bucket, Key }),
      );
      await s3.client.send(
        new UploadPartCommand({
          Bucket: s3.bucket,
          Key,
          UploadId,
          PartNumber: 1,
          Body: randomBytes(1000),
        }),
      );
    }
    expect((await s3.openUploads()).map((upload) => upload.key).sort()).toEqual(
      [ours, foreign].sort(),
    );
    // Younger than the cutoff: kept.
    expect(await storage.abortIncompleteUploads(new Date(Date.now() - HOUR))).toBe(0);
    expect(await storage.abortIncompleteUploads(new Date(Date.now() + 25 * HOUR))).toBe(1);
    expect((await s3.openUploads()).map((upload) => upload.key)).toEqual([foreign]);
  });

  it("signs a download URL that serves the type, the file name and Range", async () => {
    const data = randomBytes(64 * 1024);
    const key = newStorageKey(ORG);
    await storage.put(key, Readable.from([data]), { maxBytes: MIB, contentType: "audio/mpeg" });
    const url = await storage.presigned.downloadUrl(key, {
      contentType: "audio/mpeg",
      filename: "recording-x.mp3",
      expiresInSeconds: 300,
    });
    expect(new URL(url).searchParams.get("X-Amz-Expires")).toBe("300");
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("audio/mpeg");
    expect(whole.headers.get("content-disposition")).toBe('attachment; filename="recording-x.mp3"');
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const ranged = await fetch(url, { headers: { range: "bytes=100-199" } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(100, 200))).toBe(true);
  });

  it("sends checksums only where S3 requires them, so presigned uploads also work with AWS", async () => {
    // With the SDK's default (WHEN_SUPPORTED) a presigned PUT carries the CRC32 of an empty body,
    // which AWS compares with the real bytes and refuses.
    const defaults = driver();
    expect(await defaults.client.config.requestChecksumCalculation()).toBe("WHEN_REQUIRED");
    expect(await defaults.client.config.responseChecksumValidation()).toBe("WHEN_REQUIRED");
    const [part] = await defaults.presigned.uploadUrls(newStorageKey(ORG), {
      storageUploadId: null,
      plan: { contentType: "video/mp4", sizeBytes: 10, partSizeBytes: 8 * MIB },
      expiresInSeconds: 60,
    });
    const query = new URL(part!.url).searchParams;
    expect([...query.keys()].filter((name) => /checksum/i.test(name))).toEqual([]);
    expect(query.get("X-Amz-SignedHeaders")).toBe("content-length;content-type;host");
    // The SDK's own default, for contrast: the empty body's checksum is in the URL.
    const sdkDefaults = new S3Client({
      region: "us-east-1",
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: S3_TEST_CREDENTIALS,
    });
    const url = await getSignedUrl(
      sdkDefaults,
      new PutObjectCommand({ Bucket: s3.bucket, Key: "k", ContentLength: 10 }),
    );
    expect(new URL(url).searchParams.get("x-amz-checksum-crc32")).toBe("AAAAAA==");
    sdkDefaults.destroy();
    defaults.client.destroy();
  });
});

describe("the S3 bucket check at start-up (HeadBucket)", () => {
  it("passes for an existing bucket with good credentials", async () => {
    await expect(driver().assertBucketReachable()).resolves.toBeUndefined();
  });

  it("names S3_BUCKET when the bucket does not exist", async () => {
    const error = await driver({ bucket: "no-such-bucket" })
      .assertBucketReachable()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageConfigError);
    expect((error as Error).message).toMatch(
      /^S3_BUCKET: the bucket "no-such-bucket" does not exist/,
    );
  });

  it("names the credentials when the store refuses them", async () => {
    const error = await driver({
      credentials: { accessKeyId: "WRONG", secretAccessKey: "WRONG" },
    })
      .assertBucketReachable()
      .catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^S3_BUCKET: access to the bucket .* was refused/);
    expect((error as Error).message).toContain("AWS_ACCESS_KEY_ID");
  });

  it("names S3_ENDPOINT when nothing answers there", async () => {
    const error = await driver({ endpoint: "http://127.0.0.1:9" })
      .assertBucketReachable()
      .catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/^S3_ENDPOINT: the object store at S3_ENDPOINT=/);
  });

  it("is the driver STORAGE_DRIVER=s3 builds from S3_* (local stays the default)", () => {
    expect(createStorage(loadConfig({})).driver).toBe("local");
    const built = createStorage(loadConfig({ ...s3.env("zigznote/recordings") }));
    expect(built).toBeInstanceOf(S3Storage);
    expect((built as S3Storage).keyPrefix).toBe("zigznote/recordings/");
    (built as S3Storage).client.destroy();
    expect(() => loadConfig({ STORAGE_DRIVER: "s3" })).toThrow(/S3_BUCKET: is required/);
    expect(() => loadConfig({ STORAGE_DRIVER: "s3", S3_BUCKET: "b" })).toThrow(/S3_BUCKET/);
    expect(() => loadConfig({ STORAGE_DRIVER: "s3", S3_BUCKET: "bucket" })).toThrow(
      /S3_REGION: is required/,
    );
  });
});
