-- A run renews its lease while it works: the runner writes heartbeat_at every third of the job's
-- lease, and a run counts as abandoned only when neither its start nor its last heartbeat is
-- within the lease (before, a live run longer than its lease was closed and the next tick ran
-- beside it).
ALTER TABLE "job_runs" ADD COLUMN "heartbeat_at" TIMESTAMPTZ(3);
