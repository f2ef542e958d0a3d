import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { loadConfig } from "../../src/config";
import { startServer as startServerInProcess } from "../../src/server";
import { testDatabaseUrl } from "../support/env";
import {
  freePort,
  logEntries,
  repoRoot,
  shellEnv as newcomerEnv,
  startProcess,
  stopProcess as stop,
  waitForHealth,
  type StartedProcess as Started,
} from "../support/serverProcess";

/**
 * The zero-setup contract: `pnpm start` with no DATABASE_URL runs the built server on an embedded
 * PostgreSQL, migrated and seeded, and a second start finds the data of the first. Then the
 * newcomer's sign-in (`pnpm -s dev:token`) on that server. One file, one data folder: the
 * embedded database is migrated once and the other starts reuse it.
 */

const dataDir = mkdtempSync(path.join(tmpdir(), "zigznote-embedded-"));
const keyDir = mkdtempSync(path.join(tmpdir(), "zigznote-devkey-"));
const keyFile = path.join(keyDir, "dev-session-key.pem");
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(keyDir, { recursive: true, force: true });
});

/** A newcomer's shell, with this file's development key. */
const shellEnv = (env: Record<string, string>) =>
  newcomerEnv({ DEV_SESSION_KEY_FILE: keyFile, ...env });

const startServer = (env: Record<string, string>): Started =>
  startProcess({ DEV_SESSION_KEY_FILE: keyFile, ...env });

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
  it("starts within a minute, migrated and seeded, shuts down cleanly, and reuses its data", async () => {
    const dbPort = await freePort();
    const env = {
      PORT: "0",
      HOST: "127.0.0.1",
      EMBEDDED_DB_DIR: dataDir,
      EMBEDDED_DB_PORT: String(dbPort),
      LOG_LEVEL: "info",
      JOBS_ENABLED: "false",
    };

    const first = startServer(env);
    const startedAt = Date.now();
    const { health } = await waitForHealth(first, 60_000);
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
    await waitForHealth(second, 60_000);
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

const run = promisify(execFile);

const signInLine = (output: string): string => {
  const line = logEntries(output).find(
    (entry) => typeof entry.msg === "string" && entry.msg.startsWith("sign-in: "),
  );
  if (!line) throw new Error(`no sign-in line in:\n${output}`);
  return line.msg as string;
};

const me = (port: number, token: string) =>
  fetch(`http://127.0.0.1:${port}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });

/** `pnpm -s dev:token <args>` from the repository root, as the README's quick start runs it. */
const devToken = (args: string[], env: Record<string, string> = {}) =>
  run("pnpm", ["-s", "dev:token", ...args], { cwd: repoRoot, env: shellEnv(env) });

describe("pnpm -s dev:token (development sign-in)", () => {
  const base = {
    HOST: "127.0.0.1",
    EMBEDDED_DB_DIR: dataDir,
    LOG_LEVEL: "info",
    JOBS_ENABLED: "false",
    NODE_ENV: "development",
  };
  let token: string;

  it("gives a development server on the embedded database a token that GET /api/v1/me accepts", async () => {
    const server = startServer({ ...base, PORT: "0" });
    try {
      const { port } = await waitForHealth(server, 120_000);
      expect(signInLine(server.output())).toMatch(/^sign-in: development session tokens from/);
      // The server made the key; only its owner may read it.
      expect(statSync(keyFile).mode & 0o077).toBe(0);

      const { stdout, stderr } = await devToken(["--org", "acme", "--role", "admin"]);
      token = stdout.trim();
      expect(token.split(".")).toHaveLength(3);
      expect(stderr).toContain("/api/v1/me");

      const res = await me(port, token);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        kind: "user",
        organization: { name: "acme", clerkId: "org_dev_acme" },
        user: { clerkId: "user_dev_dev" },
        role: "admin",
      });
      // A member token of the same organization joins it as a member.
      const member = await devToken(["--user", "bo", "--role", "member"]);
      const memberRes = await me(port, member.stdout.trim());
      expect(memberRes.status).toBe(200);
      expect(await memberRes.json()).toMatchObject({
        organization: { name: "acme" },
        role: "member",
      });
      // The admin API: an organization's admin is refused, --platform-admin gets in.
      const overview = (bearer: string) =>
        fetch(`http://127.0.0.1:${port}/api/v1/admin/overview`, {
          headers: { authorization: `Bearer ${bearer}` },
        });
      expect((await overview(token)).status).toBe(403);
      const operator = await devToken(["--user", "ops", "--platform-admin"]);
      expect(operator.stderr).toContain("platform admin");
      const operatorRes = await overview(operator.stdout.trim());
      expect(operatorRes.status).toBe(200);
      const figures = (await operatorRes.json()) as { organizations: { total: number } };
      expect(figures.organizations.total).toBeGreaterThanOrEqual(1);
    } finally {
      await stop(server);
    }
  }, 150_000);

  it("is not trusted with NODE_ENV=production, which dev:token itself refuses too", async () => {
    const server = startServer({ ...base, PORT: "0", NODE_ENV: "production" });
    try {
      const { port } = await waitForHealth(server, 120_000);
      expect(signInLine(server.output())).toMatch(
        /^sign-in: API keys only; .*dev:token is not trusted: NODE_ENV is production/,
      );
      const res = await me(port, token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "SESSION_AUTH_NOT_CONFIGURED",
      );
    } finally {
      await stop(server);
    }
    const refused = await devToken([], { NODE_ENV: "production" }).then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(refused).toMatchObject({ code: 1, stdout: "" });
    expect(refused!.stderr).toContain("NODE_ENV is production");
  }, 150_000);

  it("is not trusted on an external database (DATABASE_URL set)", async () => {
    const config = loadConfig({
      ...base,
      PORT: "0",
      LOG_LEVEL: "silent",
      DEV_SESSION_KEY_FILE: keyFile,
      DATABASE_URL: testDatabaseUrl,
      STORAGE_DIR: path.join(keyDir, "storage"),
      // As the test database was seeded (tests elsewhere rely on these price ids).
      STRIPE_PRICE_PRO: "price_test_pro",
      STRIPE_PRICE_BUSINESS: "price_test_business",
    });
    const running = await startServerInProcess(config);
    try {
      const res = await me(running.port, token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "SESSION_AUTH_NOT_CONFIGURED",
      );
    } finally {
      await running.close();
    }
  });

  it("exits naming CLERK_JWT_KEY when the key is not one Clerk's SDK can use", async () => {
    const started = startServer({ ...base, PORT: "0", CLERK_JWT_KEY: "not a pem" });
    // A server that starts anyway is stopped (and then has no exit code 1).
    const guard = setTimeout(() => started.child.kill("SIGKILL"), 20_000);
    const code = await new Promise((resolve) => started.child.once("exit", resolve));
    clearTimeout(guard);
    expect(code).toBe(1);
    expect(started.output()).toMatch(/Invalid configuration:\n {2}- CLERK_JWT_KEY: /);
  });
});
