import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ListObjectsV2Command, ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { S3Storage, type S3StorageSettings } from "../../../src/recordings";

/**
 * S3 at its network edge: `s3rver` (an S3-compatible server from the npm registry: buckets,
 * objects, multipart uploads, ranged GETs, presigned URLs, DeleteObjects) on a loopback port,
 * keeping its data in a temporary folder. s3rver 3.7 lacks three calls of the S3 API that the
 * driver and its tests use; they are added here as S3 documents them, on s3rver's own files:
 * ListMultipartUploads (`GET /bucket?uploads`), ListParts (`GET /bucket/key?uploadId=`) and
 * AbortMultipartUpload (`DELETE /bucket/key?uploadId=`). UploadPart to an upload that is not
 * open (completed, aborted, never begun) answers 404 NoSuchUpload, as S3 does: s3rver would
 * store the part anyway.
 *
 * The access key is s3rver's (`S3RVER`); the apps under test find it where the AWS SDK's default
 * chain looks (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` of a child process) or get it
 * passed explicitly in-process.
 */

export const S3_TEST_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
export const S3_TEST_REGION = "us-east-1";

export interface S3TestServer {
  endpoint: string;
  bucket: string;
  /** s3rver's data folder. */
  directory: string;
  /** A client of the server (path style, the test credentials). */
  client: S3Client;
  /** The S3 driver on this bucket (credentials passed explicitly: this is the test process). */
  storage(settings?: Partial<S3StorageSettings>): S3Storage;
  /** The S3_* (and AWS_*) variables an API process needs to use this bucket. */
  env(keyPrefix?: string): Record<string, string>;
  /** Every object key in the bucket under `prefix`. */
  objectKeys(prefix?: string): Promise<string[]>;
  /** Multipart uploads begun and neither completed nor aborted. */
  openUploads(): Promise<{ key: string; uploadId: string; initiated: Date }[]>;
  /** Folders of unfinished multipart uploads on s3rver's disk (what an abort must remove). */
  uploadFolders(): string[];
  close(): Promise<void>;
}

/** The parts of Koa's context the added calls use. */
interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

const xmlEscape = (value: string) =>
  value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function xmlError(ctx: KoaContext, status: number, code: string, message: string): void {
  ctx.status = status;
  ctx.type = "application/xml";
  ctx.body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${xmlEscape(message)}</Message></Error>`;
}

function queryValue(ctx: KoaContext, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The access key id of a signed request (header or presigned query), if any. */
function accessKeyOf(ctx: KoaContext): string | undefined {
  const header = ctx.headers.authorization;
  const credential =
    (typeof header === "string" ? /Credential=([^/,\s]+)/.exec(header)?.[1] : undefined) ??
    queryValue(ctx, "X-Amz-Credential")?.split("/")[0];
  return credential;
}

/** The three multipart calls s3rver lacks, on its own upload folders. */
function multipartCalls(directory: string): KoaMiddleware {
  const uploadsDir = (bucket: string) => path.join(directory, bucket, "._S3rver_uploads");

  async function uploadKey(bucket: string, uploadId: string): Promise<string | null> {
    if (!/^[0-9a-f]+$/.test(uploadId)) return null;
    try {
      return await readFile(path.join(uploadsDir(bucket), uploadId, "key"), "utf8");
    } catch {
      return null;
    }
  }

  return async (ctx, next) => {
    const [, bucket = "", ...keyParts] = ctx.path.split("/");
    const key = decodeURIComponent(keyParts.join("/"));
    const uploadId = queryValue(ctx, "uploadId");
    const isListUploads = ctx.method === "GET" && key === "" && "uploads" in ctx.query;
    const isListParts = ctx.method === "GET" && key !== "" && uploadId !== undefined;
    const isAbort = ctx.method === "DELETE" && key !== "" && uploadId !== undefined;
    const isUploadPart = ctx.method === "PUT" && key !== "" && uploadId !== undefined;
    if (isUploadPart) {
      // s3rver itself checks the signature; only the upload's existence is added here.
      if ((await uploadKey(bucket, uploadId)) !== key) {
        xmlError(ctx, 404, "NoSuchUpload", "The specified upload does not exist");
        return;
      }
      return next();
    }
    if (!isListUploads && !isListParts && !isAbort) return next();
    if (accessKeyOf(ctx) !== S3_TEST_CREDENTIALS.accessKeyId) {
      xmlError(ctx, 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist");
      return;
    }

    if (isListUploads) {
      const prefix = queryValue(ctx, "prefix") ?? "";
      const ids = await readdir(uploadsDir(bucket)).catch(() => [] as string[]);
      const uploads: string[] = [];
      for (const id of ids.sort()) {
        const uploadKeyValue = await uploadKey(bucket, id);
        if (uploadKeyValue === null || !uploadKeyValue.startsWith(prefix)) continue;
        const { birthtime, ctime } = await stat(path.join(uploadsDir(bucket), id, "key"));
        const initiated = birthtime.getTime() > 0 ? birthtime : ctime;
        uploads.push(
          `<Upload><Key>${xmlEscape(uploadKeyValue)}</Key><UploadId>${id}</UploadId>` +
            `<Initiated>${initiated.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
        );
      }
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>` +
        `<Bucket>${xmlEscape(bucket)}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join("")}` +
        `</ListMultipartUploadsResult>`;
      return;
    }

    const storedKey = await uploadKey(bucket, uploadId!);
    if (storedKey === null || storedKey !== key) {
      xmlError(ctx, 404, "NoSuchUpload", "The specified upload does not exist");
      return;
    }
    const folder = path.join(uploadsDir(bucket), uploadId!);
    if (isAbort) {
      await rm(folder, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = "";
      return;
    }
    const names = (await readdir(folder)).filter((name) => /^\d+$/.test(name));
    const parts: string[] = [];
    for (const name of names.sort((a, b) => Number(a) - Number(b))) {
      const info = await stat(path.join(folder, name));
      const md5 = await readFile(path.join(folder, `${name}.md5`), "utf8").catch(() => "");
      if (!md5) continue; // still being written
      parts.push(
        `<Part><PartNumber>${name}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified>` +
          `<ETag>"${md5}"</ETag><Size>${info.size}</Size></Part>`,
      );
    }
    ctx.status = 200;
    ctx.type = "application/xml";
    ctx.body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket>` +
      `<Key>${xmlEscape(key)}</Key><UploadId>${uploadId!}</UploadId><MaxParts>1000</MaxParts>` +
      `<IsTruncated>false</IsTruncated>${parts.join("")}</ListPartsResult>`;
  };
}

/** Starts s3rver on 127.0.0.1 (a free port) with one empty bucket. */
export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? "zigznote-recordings";
  const directory = mkdtempSync(path.join(tmpdir(), "zigznote-s3rver-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  // Before s3rver's router (the last middleware), so the added calls are answered first.
  const middleware = (server as unknown as { middleware: KoaMiddleware[] }).middleware;
  middleware.splice(middleware.length - 1, 0, multipartCalls(directory));
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new S3Client({
    region: S3_TEST_REGION,
    endpoint,
    forcePathStyle: true,
    credentials: S3_TEST_CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });

  return {
    endpoint,
    bucket,
    directory,
    client,
    storage: (settings = {}) =>
      new S3Storage({
        bucket,
        region: S3_TEST_REGION,
        endpoint,
        forcePathStyle: true,
        keyPrefix: "",
        credentials: S3_TEST_CREDENTIALS,
        ...settings,
      }),
    env: (keyPrefix = "") => ({
      STORAGE_DRIVER: "s3",
      S3_BUCKET: bucket,
      S3_REGION: S3_TEST_REGION,
      S3_ENDPOINT: endpoint,
      S3_FORCE_PATH_STYLE: "true",
      S3_KEY_PREFIX: keyPrefix,
      AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
    }),
    async objectKeys(prefix = "") {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        keys.push(...(page.Contents ?? []).flatMap((object) => (object.Key ? [object.Key] : [])));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    async openUploads() {
      const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (page.Uploads ?? []).map((upload) => ({
        key: upload.Key ?? "",
        uploadId: upload.UploadId ?? "",
        initiated: upload.Initiated ?? new Date(0),
      }));
    },
    uploadFolders() {
      try {
        return readdirSync(path.join(directory, bucket, "._S3rver_uploads"));
      } catch {
        return [];
      }
    },
    async close() {
      client.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
