import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { Client } from "pg";

/** The package root (holds prisma.config.ts and prisma/migrations), from src/ or dist/. */
export const databasePackageRoot = path.resolve(__dirname, "..");

export interface RunMigrationsOptions {
  /**
   * The Prisma schema (default: this package's). Its migrations are the `migrations` folder
   * beside it, as Prisma reads them.
   */
  schemaPath?: string;
}

export interface MigrationResult {
  /** Migrations this call applied, oldest first (empty when the database was up to date). */
  applied: string[];
  /** Whether Prisma's schema engine ran; it does not when every migration is already applied. */
  engineStarted: boolean;
}

interface LocalMigration {
  name: string;
  /** SHA-256 (hex) of migration.sql, as Prisma records it in `_prisma_migrations.checksum`. */
  checksum: string;
}

interface AppliedMigration {
  name: string;
  checksum: string;
  finished: boolean;
  rolledBack: boolean;
}

/**
 * Applies every committed migration not yet applied (`prisma migrate deploy`) to `databaseUrl`.
 * The schema engine (WASM, ~10 s to start on the embedded database) only runs when the history
 * in `_prisma_migrations` is not exactly the committed one, finished, with the same checksums:
 * anything else (pending, failed, edited or unknown migrations, no table yet) is left to Prisma,
 * which applies, refuses or reports as `migrate deploy` does. Safe to run concurrently: Prisma
 * serializes deploys with an advisory lock, and a deploy that finds nothing to do is harmless.
 */
export async function runMigrations(
  databaseUrl: string,
  options: RunMigrationsOptions = {},
): Promise<MigrationResult> {
  const schemaPath = options.schemaPath ?? path.join(databasePackageRoot, "prisma/schema.prisma");
  const local = await readLocalMigrations(path.join(path.dirname(schemaPath), "migrations"));
  const before = await readAppliedMigrations(databaseUrl);
  if (isUpToDate(local, before)) return { applied: [], engineStarted: false };

  await deployWithSchemaEngine(databaseUrl, schemaPath);
  const after = await readAppliedMigrations(databaseUrl);
  const wasDone = new Set(finishedNames(before));
  const isDone = new Set(finishedNames(after));
  return {
    applied: local.map((m) => m.name).filter((name) => isDone.has(name) && !wasDone.has(name)),
    engineStarted: true,
  };
}

async function readLocalMigrations(migrationsDir: string): Promise<LocalMigration[]> {
  const entries = await readdir(migrationsDir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => ({
      name,
      checksum: createHash("sha256")
        .update(await readFile(path.join(migrationsDir, name, "migration.sql")))
        .digest("hex"),
    })),
  );
}

/** The rows of `_prisma_migrations`; null when the table does not exist (a new database). */
async function readAppliedMigrations(databaseUrl: string): Promise<AppliedMigration[] | null> {
  const url = new URL(databaseUrl);
  // Prisma keeps its table in the URL's `schema` (default public); pg does not know the parameter.
  const schema = url.searchParams.get("schema") ?? "public";
  url.searchParams.delete("schema");
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const table = await client.query<{ exists: boolean }>(
      "SELECT to_regclass(format('%I._prisma_migrations', $1::text)) IS NOT NULL AS exists",
      [schema],
    );
    if (!table.rows[0]?.exists) return null;
    const rows = await client.query<{
      migration_name: string;
      checksum: string;
      finished: boolean;
      rolled_back: boolean;
    }>(
      `SELECT migration_name, checksum, finished_at IS NOT NULL AS finished,
              rolled_back_at IS NOT NULL AS rolled_back
         FROM ${client.escapeIdentifier(schema)}._prisma_migrations`,
    );
    return rows.rows.map((row) => ({
      name: row.migration_name,
      checksum: row.checksum,
      finished: row.finished,
      rolledBack: row.rolled_back,
    }));
  } finally {
    await client.end();
  }
}

function finishedNames(applied: AppliedMigration[] | null): string[] {
  return (applied ?? []).filter((row) => row.finished && !row.rolledBack).map((row) => row.name);
}

/**
 * True only when every committed migration is applied, finished and unchanged, and the database
 * knows of nothing else: no failed or in-progress migration, none missing from the folder.
 */
function isUpToDate(local: LocalMigration[], applied: AppliedMigration[] | null): boolean {
  if (applied === null) return false;
  const live = applied.filter((row) => !row.rolledBack);
  if (live.some((row) => !row.finished)) return false;
  const committed = new Map(local.map((m) => [m.name, m.checksum]));
  if (live.some((row) => committed.get(row.name) !== row.checksum)) return false;
  const appliedNames = new Set(live.map((row) => row.name));
  return local.every((m) => appliedNames.has(m.name));
}

/** `prisma migrate deploy` on the WASM schema engine, so nothing is downloaded. */
async function deployWithSchemaEngine(databaseUrl: string, schemaPath: string): Promise<void> {
  const cli = require.resolve("prisma/build/index.js", { paths: [databasePackageRoot] });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "migrate", "deploy", "--schema", schemaPath], {
      cwd: databasePackageRoot,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PRISMA_QUERY_ENGINE_LIBRARY: "/dev/null",
        PRISMA_SCHEMA_ENGINE_BINARY: "/bin/false",
        PRISMA_HIDE_UPDATE_MESSAGE: "1",
        CHECKPOINT_DISABLE: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`prisma migrate deploy failed (exit ${String(code)}):\n${output}`));
    });
  });
}
