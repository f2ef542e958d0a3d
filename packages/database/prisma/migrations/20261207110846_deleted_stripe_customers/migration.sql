-- CreateTable
CREATE TABLE "deleted_stripe_customers" (
    "stripe_customer_id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "deleted_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "deleted_stripe_customers_pkey" PRIMARY KEY ("stripe_customer_id")
);

-- CreateIndex
CREATE INDEX "deleted_stripe_customers_organization_id_idx" ON "deleted_stripe_customers"("organization_id");

-- AddForeignKey
ALTER TABLE "deleted_stripe_customers" ADD CONSTRAINT "deleted_stripe_customers_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

