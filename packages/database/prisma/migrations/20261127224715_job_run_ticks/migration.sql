-- AlterTable
ALTER TABLE "job_runs" ALTER COLUMN "scheduled_for" SET NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "job_runs_job_name_scheduled_for_key" ON "job_runs"("job_name", "scheduled_for");


-- A job never overlaps itself: at most one run of a job is 'running' at any time, across all
-- instances. (An abandoned run is closed by the next claim once it exceeds the job's lease.)
CREATE UNIQUE INDEX "job_runs_one_running_per_job" ON "job_runs" ("job_name") WHERE "outcome" = 'running';
