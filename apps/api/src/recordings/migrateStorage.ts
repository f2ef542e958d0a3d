/**
 * Moves a deployment's recordings from local disk to the bucket (`storage:migrate --to s3`).
 *
 * Every stored object (its row says the key, size and SHA-256) is copied from STORAGE_DIR to the
 * same key in the bucket, streamed, with its SHA-256 kept as the object's metadata; then the
 * object is read back from the bucket and its size and SHA-256 compared with the row. Only an
 * object verified that way counts as copied, and only then may the local file be deleted (with
 * `deleteLocal`). An object already in the bucket with the row's size and SHA-256 metadata is
 * skipped, so the command can be interrupted and run again; nothing is written to the database.
 */
import type { PrismaClient } from "@zigznote/database";
import { isAppError } from "@zigznote/shared";
import pLimit from "p-limit";
import type { S3Storage } from "./s3Storage";
import { digestStoredObject, type StorageProvider } from "./storage";
import * as store from "./store";

export interface MigrationProgress {
  /** Objects handled so far, of `total`. */
  done: number;
  total: number;
  totalBytes: bigint;
  copied: number;
  skipped: number;
  failed: number;
  deletedLocal: number;
  bytesCopied: bigint;
  /** The object just handled, and what became of it. */
  key: string;
  outcome: ObjectOutcome;
  reason?: string;
}

export type ObjectOutcome = "copied" | "skipped" | "failed";

export interface MigrationReport {
  total: number;
  copied: number;
  skipped: number;
  deletedLocal: number;
  bytesCopied: bigint;
  failures: { key: string; reason: string }[];
}

export interface MigrationDeps {
  db: PrismaClient;
  source: StorageProvider;
  target: S3Storage;
}

const PAGE = 200;

function describe(error: unknown): string {
  if (isAppError(error) && error.cause instanceof Error) {
    return `${error.message}: ${error.cause.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Thrown for an object that cannot be copied; its message is the report's reason. */
class CopyRefused extends Error {}

/**
 * Copies one object unless the bucket has it already; returns what happened. Throws
 * CopyRefused (or a storage error) when it could not be copied and verified.
 */
async function migrateObject(
  deps: MigrationDeps,
  object: store.StoredObjectRef,
  deleteLocal: boolean,
): Promise<{ outcome: "copied" | "skipped"; bytes: number; deletedLocal: boolean }> {
  const size = Number(object.sizeBytes);
  const existing = await deps.target.stat(object.key);
  const isDone =
    existing !== null &&
    existing.sizeBytes === size &&
    (object.sha256 === null || existing.metadata.sha256 === object.sha256);
  let copied = false;
  let expectedSha256 = object.sha256;

  if (!isDone) {
    if (!(await deps.source.exists(object.key))) {
      throw new CopyRefused(
        existing
          ? "not on local disk, and the bucket's copy differs from the row"
          : "not on local disk and not in the bucket",
      );
    }
    const { body } = await deps.source.get(object.key);
    const put = await deps.target.put(object.key, body, {
      maxBytes: size,
      contentType: object.contentType,
      ...(object.sha256 ? { metadata: { sha256: object.sha256 } } : {}),
    });
    if (put.sizeBytes !== size || (object.sha256 !== null && put.sha256 !== object.sha256)) {
      await deps.target.delete(object.key);
      throw new CopyRefused(
        `the local file (${put.sizeBytes} bytes, sha256 ${put.sha256}) differs from its row ` +
          `(${size} bytes, sha256 ${object.sha256 ?? "unknown"}); nothing was kept in the bucket`,
      );
    }
    expectedSha256 = put.sha256;
    copied = true;
  }

  // Verified by reading the bucket's copy back: before counting a copy, and before any deletion.
  if (copied || deleteLocal) {
    const stored = await digestStoredObject(deps.target, object.key);
    if (
      stored.sizeBytes !== size ||
      (expectedSha256 !== null && stored.sha256 !== expectedSha256)
    ) {
      if (copied) await deps.target.delete(object.key);
      throw new CopyRefused(
        `the bucket's copy (${stored.sizeBytes} bytes, sha256 ${stored.sha256}) does not match ` +
          `(${size} bytes, sha256 ${expectedSha256 ?? "unknown"})`,
      );
    }
  }

  let deletedLocal = false;
  if (deleteLocal && (await deps.source.exists(object.key))) {
    await deps.source.delete(object.key);
    deletedLocal = true;
  }
  return { outcome: copied ? "copied" : "skipped", bytes: copied ? size : 0, deletedLocal };
}

/** Copies every stored object to the bucket; see the module comment. */
export async function migrateLocalToS3(
  deps: MigrationDeps,
  options: {
    deleteLocal: boolean;
    concurrency?: number;
    onProgress?(progress: MigrationProgress): void;
  },
): Promise<MigrationReport> {
  const { count: total, bytes: totalBytes } = await store.countStorageObjects(deps.db);
  const limit = pLimit(options.concurrency ?? 4);
  const report: MigrationReport = {
    total,
    copied: 0,
    skipped: 0,
    deletedLocal: 0,
    bytesCopied: 0n,
    failures: [],
  };
  let done = 0;
  let afterId: string | null = null;
  for (;;) {
    const page = await store.findStorageObjectsAfter(deps.db, { afterId, limit: PAGE });
    if (page.length === 0) break;
    afterId = page[page.length - 1]!.id;
    await Promise.all(
      page.map((object) =>
        limit(async () => {
          let outcome: ObjectOutcome;
          let reason: string | undefined;
          try {
            const result = await migrateObject(deps, object, options.deleteLocal);
            outcome = result.outcome;
            if (outcome === "copied") report.copied += 1;
            else report.skipped += 1;
            report.bytesCopied += BigInt(result.bytes);
            if (result.deletedLocal) report.deletedLocal += 1;
          } catch (error) {
            outcome = "failed";
            reason = describe(error);
            report.failures.push({ key: object.key, reason });
          }
          done += 1;
          options.onProgress?.({
            done,
            total: Math.max(total, done),
            totalBytes,
            copied: report.copied,
            skipped: report.skipped,
            failed: report.failures.length,
            deletedLocal: report.deletedLocal,
            bytesCopied: report.bytesCopied,
            key: object.key,
            outcome,
            ...(reason ? { reason } : {}),
          });
        }),
      ),
    );
  }
  report.total = Math.max(total, done);
  return report;
}
