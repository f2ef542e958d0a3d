-- AlterEnum
ALTER TYPE "NotificationStatus" ADD VALUE 'skipped';

-- AlterTable
ALTER TABLE "organizations" ADD COLUMN     "billing_email" TEXT,
ADD COLUMN     "billing_email_at" TIMESTAMPTZ(3);

