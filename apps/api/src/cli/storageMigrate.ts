/**
 * `pnpm --filter @zigznote/api storage:migrate --to s3 [--delete-local] [--concurrency N]`:
 * copies every recording from local disk (STORAGE_DIR) to the bucket named by S3_BUCKET,
 * S3_REGION, S3_ENDPOINT, S3_FORCE_PATH_STYLE and S3_KEY_PREFIX (credentials from the AWS SDK's
 * default chain), verifying each copy's size and SHA-256 by reading it back. It can be stopped
 * and run again: what is already in the bucket is skipped. Local files are deleted only with
 * `--delete-local`, each once its copy is verified. Exit status 0 when every object is in the
 * bucket, 1 otherwise (the failures are listed). See "Running several instances" in the README.
 */
import { parseArgs } from "node:util";
import { createPrismaClient } from "@zigznote/database";
import { loadConfigOrReport } from "../config";
import { createLogger } from "../lib/logger";
import {
  LocalDiskStorage,
  migrateLocalToS3,
  S3Storage,
  s3SettingsFromConfig,
  StorageConfigError,
  type MigrationProgress,
} from "../recordings";
import { openDatabase } from "../server";

const USAGE =
  "usage: storage:migrate --to s3 [--delete-local] [--concurrency N]\n" +
  "  copies every recording from STORAGE_DIR to the S3 bucket (S3_* variables), verified;\n" +
  "  --delete-local deletes each local file once its copy is verified.";

function mebibytes(bytes: bigint): string {
  return `${(Number(bytes) / 1024 / 1024).toFixed(1)} MiB`;
}

function progressLine(p: MigrationProgress): string {
  return (
    `[${p.done}/${p.total}] ${p.copied} copied, ${p.skipped} already there, ${p.failed} failed` +
    `${p.deletedLocal > 0 ? `, ${p.deletedLocal} local files deleted` : ""}; ` +
    `${mebibytes(p.bytesCopied)} copied of ${mebibytes(p.totalBytes)}`
  );
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        to: { type: "string" },
        "delete-local": { type: "boolean", default: false },
        concurrency: { type: "string", default: "4" },
        help: { type: "boolean", default: false },
      },
      strict: true,
    }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    return 2;
  }
  const concurrency = Number(args.concurrency);
  if (args.help || args.to !== "s3" || !Number.isInteger(concurrency) || concurrency < 1) {
    console.error(USAGE);
    return args.help ? 0 : 2;
  }
  const config = loadConfigOrReport();
  if (!config) return 1;
  const logger = createLogger(config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL);

  let target: S3Storage;
  try {
    target = new S3Storage(s3SettingsFromConfig(config));
    await target.assertBucketReachable();
  } catch (error) {
    if (!(error instanceof StorageConfigError)) throw error;
    console.error(error.message);
    return 1;
  }
  const source = new LocalDiskStorage(config.STORAGE_DIR);
  const { url, embedded } = await openDatabase(config, logger);
  const db = createPrismaClient(url, { maxConnections: 2 });
  try {
    console.log(
      `copying recordings from ${config.STORAGE_DIR} to s3://${target.bucket}/${target.keyPrefix}` +
        `${args["delete-local"] ? " (deleting each local file once its copy is verified)" : ""}`,
    );
    let lastPrinted = 0;
    const report = await migrateLocalToS3(
      { db, source, target },
      {
        deleteLocal: args["delete-local"],
        concurrency,
        onProgress(progress) {
          if (progress.outcome === "failed") {
            console.error(`failed: ${progress.key}: ${progress.reason ?? "unknown"}`);
          }
          const now = Date.now();
          if (now - lastPrinted >= 1000 || progress.done === progress.total) {
            lastPrinted = now;
            console.log(progressLine(progress));
          }
        },
      },
    );
    console.log(
      `done: ${report.total} recordings, ${report.copied} copied, ${report.skipped} already in ` +
        `the bucket, ${report.failures.length} failed, ${report.deletedLocal} local files deleted`,
    );
    for (const failure of report.failures) console.error(`  ${failure.key}: ${failure.reason}`);
    if (report.failures.length > 0) {
      console.error("some recordings are not in the bucket: fix the cause and run again");
      return 1;
    }
    return 0;
  } finally {
    await db.$disconnect();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
