/** Recordings: storage, uploads and downloads, Recall media imports, usage and the purge job. */
export {
  enqueueRecordingImport,
  type EnqueueRecordingImportInput,
  processDueRecordingImports,
  processRecordingImport,
  retryDelayMs,
  type MediaLocation,
  type RecordingImportDeps,
  type ResolveMedia,
} from "./imports";
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
export { recordingRoutes } from "./routes";
export { LocalDiskStorage, newStorageKey, type StorageProvider } from "./storage";
export {
  countActiveMembers,
  countMeetingsThisMonth,
  getUsage,
  startOfUtcMonth,
  type Usage,
} from "./usage";
