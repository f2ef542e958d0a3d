-- A deleted meeting's recordings stop counting against storage when it is deleted, not when the
-- purge deletes them: usage subtracts the objects of the organization's meetings deleted and not
-- purged yet. This partial index holds only those meetings (at most STORAGE_PURGE_AFTER_DAYS of
-- deletions), so the subtraction reads a few index entries, whatever the organization's history.

-- CreateIndex
CREATE INDEX "meetings_awaiting_purge" ON "meetings" ("organization_id") WHERE "deleted_at" IS NOT NULL AND "purged_at" IS NULL;
