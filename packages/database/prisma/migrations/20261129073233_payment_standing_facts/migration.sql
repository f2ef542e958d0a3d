-- Payment standing as facts (issue 11, defect 1): the Stripe times of the invoice failures and of
-- the past_due/unpaid subscription events not covered by a later payment. The grace end, the
-- retry count, paymentFailedAt and the status are derived from them, whatever the arrival order.
ALTER TABLE "subscriptions"
ADD COLUMN     "outstanding_failures_at" TIMESTAMPTZ(3)[] DEFAULT ARRAY[]::TIMESTAMPTZ(3)[],
ADD COLUMN     "outstanding_past_due_at" TIMESTAMPTZ(3)[] DEFAULT ARRAY[]::TIMESTAMPTZ(3)[];

-- Backfill, so the next event derives what delinquent rows show today. The time of the first
-- failure was not stored: it is the grace end minus the default GRACE_PERIOD_DAYS (7), and the
-- others are put at the latest failure.
UPDATE "subscriptions"
   SET "outstanding_failures_at" =
         ARRAY["grace_ends_at" - INTERVAL '7 days']::TIMESTAMPTZ(3)[]
         || array_fill(
              COALESCE("last_payment_failed_event_at", "payment_failed_at",
                       "grace_ends_at" - INTERVAL '7 days')::TIMESTAMPTZ(3),
              ARRAY["payment_retry_count" - 1])
 WHERE "status" IN ('past_due', 'suspended', 'unpaid')
   AND "grace_ends_at" IS NOT NULL AND "payment_retry_count" > 0;

-- Delinquent rows without a failure (a past_due subscription event alone left no grace end, the
-- defect this fixes): a past_due fact at their last event, where the grace period starts.
UPDATE "subscriptions"
   SET "outstanding_past_due_at" =
         ARRAY[COALESCE("grace_ends_at" - INTERVAL '7 days', "last_event_created_at",
                        "updated_at")]::TIMESTAMPTZ(3)[],
       "grace_ends_at" =
         COALESCE("grace_ends_at",
                  COALESCE("last_event_created_at", "updated_at") + INTERVAL '7 days')
 WHERE "status" IN ('past_due', 'suspended', 'unpaid')
   AND "outstanding_failures_at" = ARRAY[]::TIMESTAMPTZ(3)[];

-- Replaced by outstanding_failures_at (a failure older than the newest payment is stale).
ALTER TABLE "subscriptions" DROP COLUMN "last_payment_failed_event_at";
