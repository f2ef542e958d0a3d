import type { PrismaClient } from "@zigznote/database";
import type { Logger } from "../lib/logger";
import type { StorageProvider } from "./storage";
import * as store from "./store";

/**
 * The multipart uploads recording imports leave when they end: an import that gives up for good
 * aborts its upload at once; one whose abort failed then (the store was down) is found again by
 * the abandoned-uploads job, which aborts it and clears the row's record of it.
 */

/**
 * Aborts the upload an import that ended (`done` or `failed`) still names, and forgets it.
 * False when it could not be aborted (logged: the abandoned-uploads job retries).
 */
export async function abortLeftoverImportUpload(
  deps: { db: PrismaClient; storage: StorageProvider; logger: Logger },
  upload: store.LeftoverImportUpload,
): Promise<boolean> {
  try {
    await deps.storage.resumable?.abort(upload.uploadKey, upload.storageUploadId);
  } catch (error) {
    deps.logger.warn(
      { err: error, importId: upload.id },
      "could not abort a recording import's upload; the abandoned-uploads job retries",
    );
    return false;
  }
  await store.clearLeftoverImportUpload(deps.db, upload);
  return true;
}

/**
 * The uploads of recording imports that ended (done or failed) but could not abort their upload
 * then (the store failed): aborted now, the row's record of them cleared.
 */
export async function abortLeftoverImportUploads(deps: {
  db: PrismaClient;
  storage: StorageProvider;
  logger: Logger;
  batchSize: number;
}): Promise<{ aborted: number; failed: number }> {
  const failed: string[] = [];
  let aborted = 0;
  for (;;) {
    const uploads = await store.findLeftoverImportUploads(deps.db, {
      limit: deps.batchSize,
      excluded: failed,
    });
    if (uploads.length === 0) break;
    for (const upload of uploads) {
      if (await abortLeftoverImportUpload(deps, upload)) aborted += 1;
      else failed.push(upload.id);
    }
  }
  return { aborted, failed: failed.length };
}
