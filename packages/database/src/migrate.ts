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
  /**
   * How long to keep trying while another process's deploy holds Prisma's deploy lock (default
   * 5 minutes): instances started together wait for the one that migrates, rather than fail.
   */
  lockWaitMs?: number;
  /** Called once if another process's deploy has to be waited for (a log line, say). */
  onWait?: () => void;
}

export interface MigrationResult {
  /**
   * Migrations applied while this call ran, oldest first (by it, or by a concurrent deploy it
   * waited for); empty when the database was up to date.
   */
  applied: string[];
  /**
   * Whether this call started Prisma's schema engine; it does not when every migration is already
   * applied, or another process applied them while this one waited.
   */
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
 * The schema engine (WASM) only runs when the history in `_prisma_migrations` is not exactly the
 * committed one, finished, with the same checksums: anything else (pending, failed, edited or
 * unknown migrations, no table yet) is left to Prisma, which applies, refuses or reports as
 * `migrate deploy` does. Afterwards every committed migration must be applied and finished.
 *
 * Safe to run from several processes at once (instances starting together): Prisma serializes
 * deploys with an advisory lock, which it waits for only 10 s. So the engine is started once the
 * lock is free, and after a wait the history is read again first (the process that held it may
 * have applied everything); a deploy that lost the lock to another process meanwhile is tried
 * again. Waiting ends with an error after `lockWaitMs`.
 */
export async function runMigrations(
  databaseUrl: string,
  options: RunMigrationsOptions = {},
): Promise<MigrationResult> {
  const schemaPath = schemaPathOf(options);
  const local = await readLocalMigrations(schemaPath);
  const before = await readAppliedMigrations(databaseUrl);
  if (isUpToDate(local, before)) return { applied: [], engineStarted: false };

  const deadline = Date.now() + (options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
  let engineStarted = false;
  let isWaitReported = false;
  const reportWait = () => {
    if (!isWaitReported) options.onWait?.();
    isWaitReported = true;
  };
  for (;;) {
    // Another process deploying meanwhile may have applied everything by the time it lets go.
    const hasWaited = await waitForDeployLock(databaseUrl, deadline, reportWait);
    if (hasWaited && isUpToDate(local, await readAppliedMigrations(databaseUrl))) break;
    try {
      engineStarted = true;
      await deployWithSchemaEngine(databaseUrl, schemaPath);
      break;
    } catch (error) {
      // Another process took the lock between our look and Prisma's, and kept it for 10 s.
      if (!(error instanceof DeployLockTimeoutError) || Date.now() >= deadline) throw error;
    }
  }
  const after = await readAppliedMigrations(databaseUrl);
  const wasDone = new Set(finishedNames(before));
  const isDone = new Set(finishedNames(after));
  const missing = local.map((m) => m.name).filter((name) => !isDone.has(name));
  if (missing.length > 0) {
    throw new Error(
      `prisma migrate deploy ended, but these migrations are not applied: ${missing.join(", ")}`,
    );
  }
  return {
    applied: local.map((m) => m.name).filter((name) => isDone.has(name) && !wasDone.has(name)),
    engineStarted,
  };
}

/** The database lacks committed migrations (or holds one that failed): the code would fail on it. */
export class PendingMigrationsError extends Error {
  constructor(readonly pending: readonly string[]) {
    super(
      `the database lacks ${pending.length} migration(s) this version needs ` +
        `(${pending.join(", ")}): apply them with \`pnpm --filter @zigznote/database migrate\` ` +
        "(or set MIGRATE_ON_START=true)",
    );
    this.name = "PendingMigrationsError";
  }
}

/**
 * The committed migrations that `databaseUrl` has not applied and finished, oldest first (a
 * failed one included); empty when it has them all. Migrations it has beyond the committed ones
 * (a newer version's, during a rollback) are not this version's concern.
 */
export async function pendingMigrations(
  databaseUrl: string,
  options: Pick<RunMigrationsOptions, "schemaPath"> = {},
): Promise<string[]> {
  const local = await readLocalMigrations(schemaPathOf(options));
  const done = new Set(finishedNames(await readAppliedMigrations(databaseUrl)));
  return local.map((m) => m.name).filter((name) => !done.has(name));
}

/** The schema `options` name, or this package's. */
function schemaPathOf(options: Pick<RunMigrationsOptions, "schemaPath">): string {
  return options.schemaPath ?? path.join(databasePackageRoot, "prisma/schema.prisma");
}

/** The committed migrations of `schemaPath`: the `migrations` folder beside it, oldest first. */
async function readLocalMigrations(schemaPath: string): Promise<LocalMigration[]> {
  const migrationsDir = path.join(path.dirname(schemaPath), "migrations");
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

/** A pg client for Prisma's `databaseUrl`, and the schema Prisma keeps its table in. */
function clientOf(databaseUrl: string): { client: Client; schema: string } {
  const url = new URL(databaseUrl);
  // Prisma keeps its table in the URL's `schema` (default public); pg does not know the parameter.
  const schema = url.searchParams.get("schema") ?? "public";
  url.searchParams.delete("schema");
  return { client: new Client({ connectionString: url.toString() }), schema };
}

/** The rows of `_prisma_migrations`; null when the table does not exist (a new database). */
async function readAppliedMigrations(databaseUrl: string): Promise<AppliedMigration[] | null> {
  const { client, schema } = clientOf(databaseUrl);
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

/** How long `runMigrations` waits for another process's deploy. */
const DEFAULT_LOCK_WAIT_MS = 5 * 60_000;

/** The advisory lock Prisma's schema engine holds while it deploys (its documented key). */
const PRISMA_DEPLOY_LOCK = 72707369;

const LOCK_POLL_MS = 250;

/**
 * Returns once Prisma's deploy lock is free (true when it had to wait for it, calling `onWait`
 * before each wait), without taking it: the CLI takes it. Looked at with `pg_try_advisory_lock`
 * rather than waited for in Prisma's own `pg_advisory_lock`, whose 10 s timeout leaves the
 * statement waiting in the database after the CLI has given up, one more waiting connection for
 * every try.
 */
async function waitForDeployLock(
  databaseUrl: string,
  deadline: number,
  onWait: () => void,
): Promise<boolean> {
  const { client } = clientOf(databaseUrl);
  await client.connect();
  try {
    for (let hasWaited = false; ; hasWaited = true) {
      const { rows } = await client.query<{ isObtained: boolean }>(
        'SELECT pg_try_advisory_lock($1) AS "isObtained"',
        [PRISMA_DEPLOY_LOCK],
      );
      if (rows[0]?.isObtained) {
        await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_DEPLOY_LOCK]);
        return hasWaited;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `another process holds Prisma's deploy lock (advisory lock ${PRISMA_DEPLOY_LOCK}): ` +
            "a deploy is still running there, or its session is stuck (pg_locks names it)",
        );
      }
      onWait();
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
  } finally {
    await client.end();
  }
}

/**
 * What `prisma migrate deploy` prints last when it succeeded: it applied what was pending, or
 * found nothing to apply.
 */
const DEPLOY_DONE =
  /^(?:All migrations have been successfully applied\.|No pending migrations to apply\.)$/m;

/** Prisma's own words when another deploy held its advisory lock for its whole 10 s wait. */
const LOCK_TIMEOUT = "Timed out trying to acquire a postgres advisory lock";

/** A deploy that gave up waiting for another process's deploy (`runMigrations` tries again). */
class DeployLockTimeoutError extends Error {}

/**
 * `prisma migrate deploy` on the WASM schema engine, so nothing is downloaded.
 *
 * Once the CLI has printed that it is done, it is stopped rather than waited for: on the WASM
 * engine (Prisma 6.19) it stays alive until a 10 s timer its engine left behind (the deploy
 * lock's timeout) fires, holding its connection, and with it the deploy lock, all that time; a
 * second instance starting meanwhile waited those 10 s for the lock and failed. Whatever ends
 * the CLI, `runMigrations` then checks the history itself.
 */
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
      // In a process group of its own: a terminal's Ctrl-C (SIGINT to the whole foreground group)
      // must not stop a deploy halfway, which leaves the migration failed (P3009) for every later
      // start; the server holds such signals until its start is done.
      detached: true,
    });
    let output = "";
    let isDone = false;
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (!isDone && DEPLOY_DONE.test(output)) {
        isDone = true;
        child.kill("SIGTERM");
      }
    });
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0 || isDone) {
        resolve();
        return;
      }
      const message = `prisma migrate deploy failed (exit ${String(code)}):\n${output}`;
      reject(
        output.includes(LOCK_TIMEOUT) ? new DeployLockTimeoutError(message) : new Error(message),
      );
    });
  });
}
