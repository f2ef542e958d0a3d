import { Client } from "pg";
import { createPrismaClient } from "../client";
import { runMigrations } from "../migrate";
import { seedPlans } from "../seed";

/** Default test database: PostgreSQL on this machine, a database of its own. */
export const DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/zigznote_test";

/** Creates the database named in `url` on its server when it does not exist yet. */
export async function createDatabaseIfMissing(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsupported test database name: ${name}`);
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (exists.rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } catch (error) {
        // Another process created it between our check and our CREATE.
        if ((error as { code?: string }).code !== "42P04") throw error;
      }
    }
  } finally {
    await client.end();
  }
}

/**
 * Makes `url` a ready test database: created if missing, every migration applied, plans seeded.
 * Called once per test run (Jest global setup).
 */
export async function prepareTestDatabase(url: string = DEFAULT_TEST_DATABASE_URL): Promise<void> {
  await createDatabaseIfMissing(url);
  await runMigrations(url);
  const db = createPrismaClient(url, { maxConnections: 2 });
  try {
    await seedPlans(db, {
      stripePriceIds: { pro: "price_test_pro", business: "price_test_business" },
    });
  } finally {
    await db.$disconnect();
  }
}
