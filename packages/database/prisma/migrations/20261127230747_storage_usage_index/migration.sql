-- DropIndex
DROP INDEX "storage_objects_organization_id_idx";

-- CreateIndex
CREATE INDEX "storage_objects_organization_id_size_bytes_idx" ON "storage_objects"("organization_id", "size_bytes");

