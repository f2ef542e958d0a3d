-- CreateEnum
CREATE TYPE "RecordingImportStatus" AS ENUM ('pending', 'in_progress', 'done', 'failed');

-- CreateTable
CREATE TABLE "recording_imports" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "meeting_id" UUID NOT NULL,
    "bot_id" UUID,
    "provider" TEXT NOT NULL DEFAULT 'recall',
    "external_id" TEXT NOT NULL,
    "status" "RecordingImportStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "storage_object_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "recording_imports_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "recording_imports_status_next_attempt_at_idx" ON "recording_imports"("status", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "recording_imports_provider_external_id_key" ON "recording_imports"("provider", "external_id");

-- AddForeignKey
ALTER TABLE "recording_imports" ADD CONSTRAINT "recording_imports_meeting_id_fkey" FOREIGN KEY ("meeting_id") REFERENCES "meetings"("id") ON DELETE CASCADE ON UPDATE CASCADE;

