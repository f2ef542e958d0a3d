-- AlterEnum
ALTER TYPE "NotificationStatus" ADD VALUE 'skipped';

-- AlterTable
ALTER TABLE "organizations" ADD COLUMN     "billing_email" TEXT;

