-- AlterTable
ALTER TABLE "organizations" ADD COLUMN     "billing_operation_expires_at" TIMESTAMPTZ(3),
ADD COLUMN     "billing_operation_id" UUID;

-- AlterTable
ALTER TABLE "notification_outbox" ADD COLUMN     "claimed_until" TIMESTAMPTZ(3);

