-- CreateTable
CREATE TABLE "member_reservations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "clerk_user_id" TEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'member',
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "member_reservations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "member_reservations_organization_id_clerk_user_id_key" ON "member_reservations"("organization_id", "clerk_user_id");

-- AddForeignKey
ALTER TABLE "member_reservations" ADD CONSTRAINT "member_reservations_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations"("id") ON DELETE CASCADE ON UPDATE CASCADE;

