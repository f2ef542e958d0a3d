-- CreateTable
CREATE TABLE "idempotency_keys" (
    "organization_id" UUID NOT NULL,
    "key_hash" BYTEA NOT NULL,
    "fingerprint" BYTEA NOT NULL,
    "method" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "owner_id" UUID,
    "locked_until" TIMESTAMPTZ(3),
    "response_status" INTEGER,
    "response" BYTEA,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("organization_id","key_hash")
);

-- CreateIndex
CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys"("expires_at");

-- AddForeignKey
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- A claim (no answer yet) names its request and its lease, an answer is stored whole.
ALTER TABLE "idempotency_keys" ADD CONSTRAINT "idempotency_keys_claim_or_answer_check" CHECK (
    ("response_status" IS NULL) = ("response" IS NULL)
    AND ("response_status" IS NOT NULL OR ("owner_id" IS NOT NULL AND "locked_until" IS NOT NULL))
);
