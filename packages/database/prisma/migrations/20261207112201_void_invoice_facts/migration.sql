-- A voided invoice is no longer owed (audit: the failure of a voided invoice still suspended the
-- organization). Each outstanding delinquency fact now names its invoice, index by index with
-- outstanding_failures_at / outstanding_past_due_at, and the subscription remembers its voided
-- invoices (final: a late event of one records nothing).
ALTER TABLE "subscriptions" ADD COLUMN     "outstanding_failure_invoice_ids" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "outstanding_past_due_invoice_ids" TEXT[] DEFAULT ARRAY[]::TEXT[],
ADD COLUMN     "voided_invoice_ids" TEXT[] DEFAULT ARRAY[]::TEXT[];

-- Facts recorded before this migration did not keep their invoice: "" (unknown). They keep
-- counting until a payment covers them, as before: a void cannot withdraw them.
UPDATE "subscriptions"
   SET "outstanding_failure_invoice_ids" =
         array_fill(''::TEXT, ARRAY[cardinality(COALESCE("outstanding_failures_at",
                                                          ARRAY[]::TIMESTAMPTZ(3)[]))]),
       "outstanding_past_due_invoice_ids" =
         array_fill(''::TEXT, ARRAY[cardinality(COALESCE("outstanding_past_due_at",
                                                          ARRAY[]::TIMESTAMPTZ(3)[]))]);

-- Invoices already voided (recorded by payment_confirmations since invoice.voided was handled):
-- their late events must record nothing either.
UPDATE "subscriptions" s
   SET "voided_invoice_ids" = v.ids
  FROM (SELECT "subscription_id", array_agg("stripe_invoice_id" ORDER BY "stripe_invoice_id") AS ids
          FROM "payment_confirmations"
         WHERE "resolution" = 'voided' AND "subscription_id" IS NOT NULL
         GROUP BY "subscription_id") v
 WHERE s."id" = v."subscription_id";

-- The invoice arrays go with the time arrays, entry by entry.
ALTER TABLE "subscriptions"
  ADD CONSTRAINT "subscriptions_failure_invoice_ids_match"
    CHECK (cardinality(COALESCE("outstanding_failure_invoice_ids", ARRAY[]::TEXT[]))
           = cardinality(COALESCE("outstanding_failures_at", ARRAY[]::TIMESTAMPTZ(3)[]))),
  ADD CONSTRAINT "subscriptions_past_due_invoice_ids_match"
    CHECK (cardinality(COALESCE("outstanding_past_due_invoice_ids", ARRAY[]::TEXT[]))
           = cardinality(COALESCE("outstanding_past_due_at", ARRAY[]::TIMESTAMPTZ(3)[])));
