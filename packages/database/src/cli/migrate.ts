import { runMigrations } from "../migrate";

// `pnpm --filter @zigznote/database migrate`: applies the committed migrations to DATABASE_URL,
// as MIGRATE_ON_START does (runMigrations: the schema engine only when something is pending,
// stopped as soon as Prisma says it is done, and safe beside other instances migrating).
async function main(): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      "DATABASE_URL must be set (the embedded database of `pnpm start` migrates itself)",
    );
  }
  const { applied } = await runMigrations(url, {
    onWait: () => console.log("another process is applying the migrations: waiting for it"),
  });
  if (applied.length === 0) {
    console.log("the database is up to date: no migration to apply");
    return;
  }
  console.log(`${applied.length} migration${applied.length === 1 ? "" : "s"} applied:`);
  for (const name of applied) console.log(`  ${name}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
