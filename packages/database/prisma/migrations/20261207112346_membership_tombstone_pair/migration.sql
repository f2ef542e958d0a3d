-- AlterTable
ALTER TABLE "deleted_memberships" ADD COLUMN     "organization_clerk_id" TEXT,
ADD COLUMN     "user_clerk_id" TEXT;

-- CreateIndex
CREATE INDEX "deleted_memberships_user_clerk_id_organization_clerk_id_idx" ON "deleted_memberships"("user_clerk_id", "organization_clerk_id");

