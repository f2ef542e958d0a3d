-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN     "default_payment_method_id" TEXT,
ADD COLUMN     "trial_end" TIMESTAMPTZ(3);

-- CreateTable
CREATE TABLE "billing_customers" (
    "organization_id" UUID NOT NULL,
    "address" JSONB,
    "address_at" TIMESTAMPTZ(3),
    "default_payment_method_id" TEXT,
    "default_payment_method_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "billing_customers_pkey" PRIMARY KEY ("organization_id")
);

-- CreateTable
CREATE TABLE "customer_payment_methods" (
    "id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "brand" TEXT,
    "last4" TEXT,
    "exp_month" INTEGER,
    "exp_year" INTEGER,
    "expires_at" TIMESTAMPTZ(3),
    "auto_updated_at" TIMESTAMPTZ(3),
    "detached_at" TIMESTAMPTZ(3),
    "last_event_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "customer_payment_methods_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "customer_tax_ids" (
    "id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "country" TEXT,
    "verification_status" TEXT,
    "deleted_at" TIMESTAMPTZ(3),
    "last_event_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "customer_tax_ids_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "payment_confirmations" (
    "stripe_invoice_id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "subscription_id" UUID,
    "amount_due" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "hosted_invoice_url" TEXT,
    "required_at" TIMESTAMPTZ(3),
    "resolution" TEXT,
    "resolved_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "payment_confirmations_pkey" PRIMARY KEY ("stripe_invoice_id")
);

-- CreateTable
CREATE TABLE "disputes" (
    "id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "charge_id" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "currency" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "evidence_due_by" TIMESTAMPTZ(3),
    "opened_at" TIMESTAMPTZ(3) NOT NULL,
    "closed_at" TIMESTAMPTZ(3),
    "last_event_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "disputes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "customer_payment_methods_organization_id_idx" ON "customer_payment_methods"("organization_id");

-- CreateIndex
CREATE INDEX "customer_payment_methods_expires_at_idx" ON "customer_payment_methods"("expires_at");

-- CreateIndex
CREATE INDEX "customer_tax_ids_organization_id_idx" ON "customer_tax_ids"("organization_id");

-- CreateIndex
CREATE INDEX "payment_confirmations_organization_id_idx" ON "payment_confirmations"("organization_id");

-- CreateIndex
CREATE INDEX "disputes_organization_id_opened_at_idx" ON "disputes"("organization_id", "opened_at");

-- CreateIndex
CREATE INDEX "disputes_closed_at_evidence_due_by_idx" ON "disputes"("closed_at", "evidence_due_by");

-- AddForeignKey
ALTER TABLE "billing_customers" ADD CONSTRAINT "billing_customers_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "customer_payment_methods" ADD CONSTRAINT "customer_payment_methods_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "customer_tax_ids" ADD CONSTRAINT "customer_tax_ids_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "payment_confirmations" ADD CONSTRAINT "payment_confirmations_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "disputes" ADD CONSTRAINT "disputes_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

