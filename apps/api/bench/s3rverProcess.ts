/**
 * The S3-compatible server of `pnpm bench:storage` (s3rver on loopback, with the multipart calls
 * test/support/fakes/s3Server.ts adds), in a process of its own so that its CPU is not the bench's.
 * Forked by bench/storage.ts: it sends `{ endpoint, bucket, directory }` once listening and
 * stops when the parent disconnects.
 */
import { startS3Server } from "../test/support/fakes/s3Server";

async function main(): Promise<void> {
  const s3 = await startS3Server({ bucket: "zigznote-bench" });
  process.send?.({ endpoint: s3.endpoint, bucket: s3.bucket, directory: s3.directory });
  process.once("disconnect", () => {
    void s3.close().finally(() => process.exit(0));
  });
}

void main();
