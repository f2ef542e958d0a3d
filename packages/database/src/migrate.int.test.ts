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

/** The backends waiting for Prisma's deploy lock. */
async function deployLockWaiters(client: Client): Promise<number[]> {
  const waiting = await client.query<{ pid: number }>(
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted",
    [PRISMA_MIGRATE_LOCK],
  );
  return waiting.rows.map((row) => row.pid);
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

  it("lets instances started together all come up: one migrates, the others wait for it", async () => {
    await dropDatabase();
    await createDatabaseIfMissing(url);
    const results = await Promise.allSettled([1, 2, 3].map(() => runMigrations(url)));
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "fulfilled", "fulfilled"]);
    const rows = await withClient(url, (client) =>
      client.query<{ migration_name: string }>(
        "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL",
      ),
    );
    expect(rows.rows.map((row) => row.migration_name).sort()).toEqual(committed);
  }, 120_000);

  it("waits for a deploy that holds the lock longer than Prisma would, without piling up waiters", async () => {
    await dropDatabase();
    await createDatabaseIfMissing(url);
    await withClient(url, async (holder) => {
      await holder.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK]);
      await expect(runMigrations(url, { lockWaitMs: 0 })).rejects.toThrow(
        /another process holds Prisma's deploy lock/,
      );
      // Held for 12 s, longer than Prisma's own wait (10 s): the deploy starts when it is free.
      let waits = 0;
      const waiting = runMigrations(url, { onWait: () => (waits += 1) });
      for (let second = 0; second < 12; second += 1) {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        // Nothing queues for the lock meanwhile (a timed-out Prisma wait would leave its
        // statement waiting in the database).
        expect(await deployLockWaiters(holder)).toEqual([]);
      }
      await holder.query("SELECT pg_advisory_unlock($1)", [PRISMA_MIGRATE_LOCK]);
      expect(await waiting).toEqual({ applied: committed, engineStarted: true });
      expect(waits).toBe(1);
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
