import { createPrismaClient } from "../client";
import { seedPlans } from "../seed";

// `pnpm --filter @zigznote/database seed`: seeds the plans into DATABASE_URL (idempotent).
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error("DATABASE_URL must be set");
  const db = createPrismaClient(url, { maxConnections: 1 });
  try {
    await seedPlans(db, {
      stripePriceIds: {
        pro: process.env.STRIPE_PRICE_PRO,
        business: process.env.STRIPE_PRICE_BUSINESS,
      },
    });
    console.log("plans seeded");
  } finally {
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
