-- The cleanup job looks for active bots whose last status is old. Among millions of ended bots
-- the active ones are few: a partial index over them, ordered by the time of their last status,
-- turns the selection into a short range scan.
CREATE INDEX "bots_active_by_last_status_at"
    ON "bots" ("last_status_at", "id")
    WHERE "status" NOT IN ('call_ended', 'done', 'fatal', 'media_expired', 'analysis_done', 'analysis_failed', 'failed');
