-- CreateTable
CREATE TABLE "deleted_memberships" (
    "clerk_id" TEXT NOT NULL,
    "deleted_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "deleted_memberships_pkey" PRIMARY KEY ("clerk_id")
);

