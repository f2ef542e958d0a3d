import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { databasePackageRoot, PendingMigrationsError, runMigrations } from "@zigznote/database";
import { Client } from "pg";
import { startServer } from "../../src/server";
import { testDatabaseUrl } from "../support/env";
import { quietServerConfig } from "../support/quietServer";
import { committedMigrations } from "../support/migrations";
import {
  exitOf,
  serverEntry,
  shellEnv,
  stopProcess,
  waitForHealth,
  type StartedProcess,
} from "../support/serverProcess";

/**
 * Starts that must not leave the database half-migrated or serve a schema older than the code:
 * a Ctrl-C while the migrations run, and a database whose migrate step has not run.
 */

const scratch = mkdtempSync(path.join(tmpdir(), "zigznote-startsignal-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The built server in a process group of its own, as a terminal runs `pnpm start`. */
function startInGroup(env: Record<string, string>): StartedProcess {
  const child = spawn(process.execPath, [serverEntry], {
    env: shellEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

async function waitForOutput(started: StartedProcess, text: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!started.output().includes(text)) {
    if (started.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no "${text}" in the output:\n${started.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("a Ctrl-C while the embedded database is being migrated", () => {
  it("lets the migrations finish, stops cleanly, and the next start comes up", async () => {
    const env = {
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      JOBS_ENABLED: "false",
      EMBEDDED_DB_DIR: path.join(scratch, "pglite"),
      STORAGE_DIR: path.join(scratch, "storage"),
      DEV_SESSION_KEY_FILE: path.join(scratch, "dev-session-key.pem"),
    };
    const first = startInGroup(env);
    await waitForOutput(first, "checking database migrations", 90_000);
    // Into the migrations (a new database takes seconds), as a terminal sends it: to the group.
    await new Promise((resolve) => setTimeout(resolve, 700));
    process.kill(-first.child.pid!, "SIGINT");
    expect(await exitOf(first, 90_000)).toBe(0);
    expect(first.output()).toContain("signal received while starting");
    expect(first.output()).toContain("shutdown complete");

    const second = startInGroup(env);
    try {
      await waitForHealth(second, 90_000);
      expect(second.output()).not.toContain("P3009");
    } finally {
      expect(await stopProcess(second)).toBe(0);
    }
  }, 240_000);
});

describe("a database whose migrate step has not run", () => {
  const databaseUrl = (() => {
    const url = new URL(testDatabaseUrl);
    url.pathname = `${url.pathname}_behind`;
    return url.toString();
  })();

  beforeAll(async () => {
    const admin = new URL(databaseUrl);
    const name = admin.pathname.slice(1);
    admin.pathname = "/postgres";
    const client = new Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.query(`CREATE DATABASE "${name}"`);
    } finally {
      await client.end();
    }
    // The committed migrations but the last: the database of the version before this one.
    const prismaDir = path.join(scratch, "prisma-before");
    cpSync(path.join(databasePackageRoot, "prisma"), prismaDir, { recursive: true });
    rmSync(path.join(prismaDir, "migrations", committedMigrations().at(-1)!), { recursive: true });
    await runMigrations(databaseUrl, { schemaPath: path.join(prismaDir, "schema.prisma") });
  }, 120_000);

  it("refuses to start, naming the migration it lacks and how to apply it", async () => {
    const last = committedMigrations().at(-1)!;
    const start = startServer(quietServerConfig(databaseUrl, path.join(scratch, "storage-behind")));
    await expect(start).rejects.toBeInstanceOf(PendingMigrationsError);
    await expect(start).rejects.toThrow(
      new RegExp(`lacks 1 migration\\(s\\).*\\(${last}\\).*database migrate`),
    );
  }, 60_000);
});
