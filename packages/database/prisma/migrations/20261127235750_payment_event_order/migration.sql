-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN     "last_payment_failed_event_at" TIMESTAMPTZ(3),
ADD COLUMN     "last_payment_succeeded_event_at" TIMESTAMPTZ(3);

