import path from "node:path";
import type { Config } from "../config";
import type { Logger } from "../lib/logger";
import { S3Storage, StorageConfigError, type S3StorageSettings } from "./s3Storage";
import { LocalDiskStorage, type StorageProvider } from "./storage";

/** What the storage drivers read of the configuration. */
export type StorageConfig = Pick<
  Config,
  | "STORAGE_DRIVER"
  | "STORAGE_DIR"
  | "S3_BUCKET"
  | "S3_REGION"
  | "S3_ENDPOINT"
  | "S3_FORCE_PATH_STYLE"
  | "S3_KEY_PREFIX"
>;

/**
 * The S3 driver's settings from S3_*; credentials are left to the SDK's default chain. Throws
 * StorageConfigError naming what is missing (the config already requires both with
 * STORAGE_DRIVER=s3; the migration command reads them with STORAGE_DRIVER still local).
 */
export function s3SettingsFromConfig(
  config: StorageConfig,
  overrides: Partial<S3StorageSettings> = {},
): S3StorageSettings {
  if (!config.S3_BUCKET) throw new StorageConfigError("S3_BUCKET: is required for object storage");
  if (!config.S3_REGION) throw new StorageConfigError("S3_REGION: is required for object storage");
  return {
    bucket: config.S3_BUCKET,
    region: config.S3_REGION,
    endpoint: config.S3_ENDPOINT,
    forcePathStyle: config.S3_FORCE_PATH_STYLE,
    keyPrefix: config.S3_KEY_PREFIX,
    ...overrides,
  };
}

/** The driver STORAGE_DRIVER names (`local`: files under STORAGE_DIR, the default). */
export function createStorage(config: StorageConfig): StorageProvider {
  if (config.STORAGE_DRIVER === "s3") return new S3Storage(s3SettingsFromConfig(config));
  return new LocalDiskStorage(path.resolve(config.STORAGE_DIR));
}

/**
 * `createStorage`, checked before the server takes requests: with S3 the bucket must exist and
 * the credentials must reach it (HeadBucket), else StorageConfigError names the variable to fix.
 */
export async function openStorage(config: StorageConfig, logger: Logger): Promise<StorageProvider> {
  const storage = createStorage(config);
  if (storage instanceof S3Storage) {
    await storage.assertBucketReachable();
    logger.info(
      {
        bucket: storage.bucket,
        keyPrefix: storage.keyPrefix,
        endpoint: config.S3_ENDPOINT ?? "AWS",
      },
      "recordings are stored in the S3 bucket",
    );
  } else {
    logger.info({ dir: path.resolve(config.STORAGE_DIR) }, "recordings are stored on local disk");
  }
  return storage;
}
