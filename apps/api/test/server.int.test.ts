import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "pg";

/**
 * The zero-setup contract: `pnpm start` with no DATABASE_URL runs the built server on an embedded
 * PostgreSQL, migrated and seeded, and a second start finds the data of the first.
 */

const serverEntry = path.resolve(__dirname, "../dist/server.js");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

interface Started {
  child: ChildProcess;
  output: () => string;
}

function startServer(env: Record<string, string>): Started {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete childEnv.DATABASE_URL;
  delete childEnv.REDIS_URL;
  const child = spawn(process.execPath, [serverEntry], {
    env: childEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

async function waitForHealth(port: number, started: Started, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null)
      throw new Error(`server exited early:\n${started.output()}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      if (res.status === 200) return res;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server not healthy within ${timeoutMs} ms:\n${started.output()}`);
}

async function stop(started: Started): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) =>
    started.child.once("exit", (code) => resolve(code)),
  );
  started.child.kill("SIGTERM");
  return exited;
}

async function query<T>(port: number, sql: string): Promise<T[]> {
  const client = new Client({
    connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
  });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe("pnpm start without DATABASE_URL (embedded PostgreSQL)", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "zigznote-embedded-"));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("starts within a minute, migrated and seeded, shuts down cleanly, and reuses its data", async () => {
    const [httpPort, dbPort] = [await freePort(), await freePort()];
    const env = {
      PORT: String(httpPort),
      HOST: "127.0.0.1",
      EMBEDDED_DB_DIR: dataDir,
      EMBEDDED_DB_PORT: String(dbPort),
      DEV_SESSION_KEY_FILE: path.join(dataDir, "dev-session-key.pem"),
      LOG_LEVEL: "info",
      JOBS_ENABLED: "false",
    };

    const first = startServer(env);
    const startedAt = Date.now();
    const health = await waitForHealth(httpPort, first, 60_000);
    const startupMs = Date.now() - startedAt;
    expect(startupMs).toBeLessThan(60_000);
    const body = (await health.json()) as { checks: { database: { status: string } } };
    expect(body.checks.database.status).toBe("up");

    const migrations = await query<{ migration_name: string; finished_at: Date | null }>(
      dbPort,
      "SELECT migration_name, finished_at FROM _prisma_migrations",
    );
    expect(migrations.length).toBeGreaterThan(0);
    expect(migrations.every((m) => m.finished_at !== null)).toBe(true);
    const plans = await query<{ slug: string }>(dbPort, "SELECT slug FROM plans ORDER BY rank");
    expect(plans.map((p) => p.slug)).toEqual(["free", "pro", "business"]);
    await query(dbPort, "INSERT INTO organizations (name) VALUES ('kept between starts')");

    expect(await stop(first)).toBe(0);
    expect(first.output()).toContain("shutdown complete");

    const second = startServer(env);
    await waitForHealth(httpPort, second, 60_000);
    const kept = await query<{ name: string }>(
      dbPort,
      "SELECT name FROM organizations WHERE name = 'kept between starts'",
    );
    expect(kept).toHaveLength(1);
    const plansAgain = await query<{ count: string }>(dbPort, "SELECT count(*) FROM plans");
    expect(plansAgain[0]!.count).toBe("3");
    expect(await stop(second)).toBe(0);
  }, 150_000);

  it("exits with a readable message when the configuration is invalid", async () => {
    const started = startServer({ PORT: "not-a-port", EMBEDDED_DB_DIR: dataDir });
    const code = await new Promise<number | null>((resolve) => started.child.once("exit", resolve));
    expect(code).toBe(1);
    expect(started.output()).toContain("Invalid configuration");
    expect(started.output()).toContain("PORT");
  });
});
