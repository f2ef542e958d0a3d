-- CreateEnum
CREATE TYPE "RecordingUploadStatus" AS ENUM ('pending', 'completed', 'aborted');

-- CreateTable
CREATE TABLE "recording_uploads" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "meeting_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "storage_upload_id" TEXT,
    "content_type" TEXT NOT NULL,
    "size_bytes" BIGINT NOT NULL,
    "part_size_bytes" BIGINT NOT NULL,
    "status" "RecordingUploadStatus" NOT NULL DEFAULT 'pending',
    "storage_object_id" UUID,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closed_at" TIMESTAMPTZ(3),

    CONSTRAINT "recording_uploads_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "recording_uploads_key_key" ON "recording_uploads"("key");

-- CreateIndex
CREATE INDEX "recording_uploads_meeting_id_idx" ON "recording_uploads"("meeting_id");

-- CreateIndex
CREATE INDEX "recording_uploads_status_created_at_idx" ON "recording_uploads"("status", "created_at");

-- AddForeignKey
ALTER TABLE "recording_uploads" ADD CONSTRAINT "recording_uploads_meeting_id_fkey" FOREIGN KEY ("meeting_id") REFERENCES "meetings"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- What Prisma cannot express: a direct upload has bytes and parts, and a closed one says when.
ALTER TABLE "recording_uploads"
    ADD CONSTRAINT "recording_uploads_size_positive" CHECK ("size_bytes" > 0),
    ADD CONSTRAINT "recording_uploads_part_size_positive" CHECK ("part_size_bytes" > 0),
    ADD CONSTRAINT "recording_uploads_closed_at_set"
        CHECK (("status" = 'pending') = ("closed_at" IS NULL));
