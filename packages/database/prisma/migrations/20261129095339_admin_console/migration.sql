-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN     "comp_until" TIMESTAMPTZ(3),
ADD COLUMN     "version" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "plan_violations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "limit_value" BIGINT NOT NULL,
    "current_usage" BIGINT NOT NULL,
    "detected_at" TIMESTAMPTZ(3) NOT NULL,
    "grace_ends_at" TIMESTAMPTZ(3),
    "waived_until" TIMESTAMPTZ(3),
    "resolved_at" TIMESTAMPTZ(3),
    "version" INTEGER NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "plan_violations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "plan_violation_events" (
    "id" BIGSERIAL NOT NULL,
    "violation_id" UUID NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "event" TEXT NOT NULL,
    "actor_user_id" UUID,
    "reason" TEXT,
    "detail" JSONB,

    CONSTRAINT "plan_violation_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "admin_audit_log" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "actor_user_id" UUID NOT NULL,
    "action" TEXT NOT NULL,
    "target_type" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "organization_id" UUID,
    "reason" TEXT NOT NULL,
    "before" JSONB,
    "after" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "admin_audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "plan_violations_organization_id_detected_at_idx" ON "plan_violations"("organization_id", "detected_at");

-- CreateIndex
CREATE INDEX "plan_violations_detected_at_idx" ON "plan_violations"("detected_at");

-- CreateIndex
CREATE INDEX "plan_violations_resolved_at_idx" ON "plan_violations"("resolved_at");

-- CreateIndex
CREATE INDEX "plan_violation_events_violation_id_at_idx" ON "plan_violation_events"("violation_id", "at");

-- CreateIndex
CREATE INDEX "admin_audit_log_created_at_id_idx" ON "admin_audit_log"("created_at", "id");

-- CreateIndex
CREATE INDEX "admin_audit_log_target_id_created_at_idx" ON "admin_audit_log"("target_id", "created_at");

-- CreateIndex
CREATE INDEX "admin_audit_log_actor_user_id_created_at_idx" ON "admin_audit_log"("actor_user_id", "created_at");

-- CreateIndex
CREATE INDEX "admin_audit_log_organization_id_created_at_idx" ON "admin_audit_log"("organization_id", "created_at");

-- CreateIndex
CREATE INDEX "organizations_created_at_id_idx" ON "organizations"("created_at", "id");

-- CreateIndex
CREATE INDEX "organizations_plan_slug_status_idx" ON "organizations"("plan_slug", "status");

-- CreateIndex
CREATE INDEX "job_runs_started_at_idx" ON "job_runs"("started_at");

-- AddForeignKey
ALTER TABLE "plan_violations" ADD CONSTRAINT "plan_violations_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "plan_violation_events" ADD CONSTRAINT "plan_violation_events_violation_id_fkey" FOREIGN KEY ("violation_id") REFERENCES "plan_violations"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Written by hand (Prisma cannot express these).

-- At most one unresolved violation of each type per organization (resolved ones stay as history).
CREATE UNIQUE INDEX "plan_violations_one_unresolved" ON "plan_violations" ("organization_id", "type")
    WHERE "resolved_at" IS NULL;
-- The console's violation pages (unresolved by default), by detection or by grace end.
CREATE INDEX "plan_violations_unresolved_detected" ON "plan_violations" ("detected_at" DESC, "id" DESC)
    WHERE "resolved_at" IS NULL;
CREATE INDEX "plan_violations_unresolved_grace" ON "plan_violations" ("grace_ends_at", "id")
    WHERE "resolved_at" IS NULL;
ALTER TABLE "plan_violations"
    ADD CONSTRAINT "plan_violations_type_check" CHECK ("type" IN ('meetings', 'team_members', 'storage')),
    ADD CONSTRAINT "plan_violations_action_check" CHECK ("action" IN ('read_only', 'notify_admin', 'grace_period'));

-- Organization lookup by the start of its name, case-insensitive (LIKE 'prefix%'), in name order.
CREATE INDEX "organizations_lower_name_prefix" ON "organizations" ((lower("name") COLLATE "C"), "id");
-- The last failure of each job (the console's overview).
CREATE INDEX "job_runs_failed" ON "job_runs" ("job_name", "started_at" DESC) WHERE "outcome" = 'failed';

-- The audit log is append-only: nothing may change or remove an entry once written.
ALTER TABLE "admin_audit_log" ADD CONSTRAINT "admin_audit_log_reason_check" CHECK (length(btrim("reason")) > 0);
-- The migration runner (@prisma/adapter-pg's executeScript) splits scripts at every semicolon,
-- quoted or not, so the body spells its one semicolon as the escape \003B.
CREATE FUNCTION "admin_audit_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS
U&'BEGIN RAISE EXCEPTION ''admin_audit_log is append-only: % refused'', TG_OP USING ERRCODE = ''insufficient_privilege''\003B END';
CREATE TRIGGER "admin_audit_log_append_only"
    BEFORE UPDATE OR DELETE ON "admin_audit_log"
    FOR EACH ROW EXECUTE FUNCTION "admin_audit_log_append_only"();

-- Backfill: the violations recorded on organizations become rows (with their detection event).
WITH backfilled AS (
    INSERT INTO "plan_violations"
        ("organization_id", "type", "action", "limit_value", "current_usage", "detected_at", "grace_ends_at")
    SELECT o."id", v->>'type', v->>'action', (v->>'limit')::bigint, (v->>'current')::bigint,
           (v->>'detectedAt')::timestamptz, (v->>'graceEndsAt')::timestamptz
      FROM "organizations" o
     CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(o."plan_violations") = 'array' THEN o."plan_violations" ELSE '[]'::jsonb END) v
     WHERE v->>'type' IN ('meetings', 'team_members', 'storage')
       AND v->>'action' IN ('read_only', 'notify_admin', 'grace_period')
       AND v->>'detectedAt' IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING "id", "detected_at"
)
INSERT INTO "plan_violation_events" ("violation_id", "at", "event")
SELECT "id", "detected_at", 'detected' FROM backfilled;
