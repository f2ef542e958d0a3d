-- Resumable recording imports: the multipart upload an import feeds stays open between its
-- attempts, remembered here with the parts it holds and the source's validator, so that the next
-- attempt asks the source only for the bytes after the last complete part.

-- AlterTable
ALTER TABLE "recording_imports" ADD COLUMN     "upload_key" TEXT,
ADD COLUMN     "storage_upload_id" TEXT,
ADD COLUMN     "source_validator" TEXT,
ADD COLUMN     "source_size_bytes" BIGINT,
ADD COLUMN     "part_size_bytes" BIGINT,
ADD COLUMN     "uploaded_parts" JSONB NOT NULL DEFAULT '[]';

-- CreateIndex
CREATE INDEX "recording_imports_storage_upload_id_idx" ON "recording_imports"("storage_upload_id") WHERE "storage_upload_id" IS NOT NULL;
