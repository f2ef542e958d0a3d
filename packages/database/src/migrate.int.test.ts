import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";
import { databasePackageRoot, runMigrations } from "./migrate";
import { createDatabaseIfMissing, DEFAULT_TEST_DATABASE_URL } from "./testing/prepare";

/** The advisory lock Prisma's schema engine takes around every `migrate deploy`. */
const PRISMA_MIGRATE_LOCK = 72707369;

const baseUrl = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
const databaseName = `${baseUrl.pathname.slice(1)}_migrate`;
const url = Object.assign(new URL(baseUrl), { pathname: `/${databaseName}` }).toString();

async function withClient<T>(connectionString: string, use: (client: Client) => Promise<T>) {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function dropDatabase(): Promise<void> {
  const admin = Object.assign(new URL(baseUrl), { pathname: "/postgres" }).toString();
  await withClient(admin, (client) =>
    client.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`),
  );
}

const schemaDir = path.join(databasePackageRoot, "prisma");
const committed = readdirSync(path.join(schemaDir, "migrations"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const latest = committed.at(-1)!;

/** A copy of the schema folder without the latest migration: a build from before it. */
function schemaWithoutLatest(): { schemaPath: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), "zigznote-migrations-"));
  cpSync(schemaDir, dir, { recursive: true });
  rmSync(path.join(dir, "migrations", latest), { recursive: true });
  return {
    schemaPath: path.join(dir, "schema.prisma"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

describe("runMigrations", () => {
  beforeAll(async () => {
    await dropDatabase();
    await createDatabaseIfMissing(url);
  });
  afterAll(dropDatabase);

  it("applies what is pending, and skips the schema engine when nothing is", async () => {
    const older = schemaWithoutLatest();
    try {
      const first = await runMigrations(url, { schemaPath: older.schemaPath });
      expect(first).toEqual({ applied: committed.slice(0, -1), engineStarted: true });
    } finally {
      older.remove();
    }

    // The current build finds one pending migration and applies it.
    expect(await runMigrations(url)).toEqual({ applied: [latest], engineStarted: true });
    const rows = await withClient(url, (client) =>
      client.query<{ migration_name: string }>(
        "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL",
      ),
    );
    expect(rows.rows.map((row) => row.migration_name).sort()).toEqual(committed);

    // Up to date: the check reads `_prisma_migrations` and returns. Prisma's deploy lock is held
    // elsewhere meanwhile, so a schema engine started here would wait for it and then fail.
    await withClient(url, async (holder) => {
      await holder.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK]);
      expect(await runMigrations(url)).toEqual({ applied: [], engineStarted: false });
    });
  }, 120_000);

  it("leaves a migration whose file changed since it was applied to Prisma", async () => {
    await runMigrations(url);
    await withClient(url, (client) =>
      client.query("UPDATE _prisma_migrations SET checksum = 'edited' WHERE migration_name = $1", [
        latest,
      ]),
    );
    // Prisma's deploy tolerates an edited migration; it is not applied again.
    expect(await runMigrations(url)).toEqual({ applied: [], engineStarted: true });
  }, 120_000);
});
