/** Recordings: storage, uploads and downloads, Recall media imports, usage and the purge job. */
export {
  enqueueRecordingImport,
  type EnqueueRecordingImportInput,
  processDueRecordingImports,
  processRecordingImport,
  type MediaLocation,
  type RecordingImportDeps,
  type ResolveMedia,
} from "./imports";
export {
  abortAbandonedUploads,
  type AbandonedUploadsDeps,
  type DirectUploadDeps,
} from "./directUploads";
export { migrateLocalToS3, type MigrationProgress, type MigrationReport } from "./migrateStorage";
export { cleanupOrphanedStorage, type StoragePurgeDeps } from "./purge";
export {
  deleteRecording,
  findRecording,
  RECORDING_CONTENT_TYPES,
  replaceRecording,
  storeRecording,
  type RecordingDeps,
  type RecordingRef,
  type RecordingStoreDeps,
} from "./recordingService";
export { recordingRoutes, type RecordingRouteDeps } from "./routes";
export { S3Storage, StorageConfigError, type S3StorageSettings } from "./s3Storage";
export { LocalDiskStorage, newStorageKey, type StorageProvider } from "./storage";
export {
  createStorage,
  openStorage,
  s3SettingsFromConfig,
  type StorageConfig,
} from "./storageDrivers";
export {
  countActiveMembers,
  countMeetingsThisMonth,
  getUsage,
  startOfUtcMonth,
  type Usage,
} from "./usage";
export { createRecordingsModule, type RecordingsModule, type RecordingsModuleDeps } from "./module";
