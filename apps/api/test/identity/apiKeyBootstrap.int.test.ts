import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { startServer } from "../../src/server";
import { testDatabaseUrl } from "../support/env";
import { quietServerConfig } from "../support/quietServer";
import { committedMigrations } from "../support/migrations";
import { repoRoot, shellEnv } from "../support/serverProcess";

/**
 * "Your own PostgreSQL and Redis" in the README, followed literally on a database nobody has used:
 * migrate (the database package's command), make an operator's API key with `api-key:create` (no
 * Clerk anywhere), start the API, and reach an authenticated route with the key. That the same
 * commands work before anything is built, as on a fresh clone, `.ci/run` shows.
 */

const run = promisify(execFile);
const databaseUrl = (() => {
  const url = new URL(testDatabaseUrl);
  url.pathname = `${url.pathname}_bootstrap`;
  return url.toString();
})();
const storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-bootstrap-"));

async function onServer<T>(database: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** The README's command line, from the repository root, with DATABASE_URL set as it says. */
const apiKeyCreate = (args: string[]) =>
  run("pnpm", ["-s", "--filter", "@zigznote/api", "api-key:create", ...args], {
    cwd: repoRoot,
    env: shellEnv({ DATABASE_URL: databaseUrl, LOG_LEVEL: "info" }),
  });

/** `pnpm --filter @zigznote/database migrate`, as the README runs it before anything is built. */
const migrate = () =>
  run("pnpm", ["--filter", "@zigznote/database", "migrate"], {
    cwd: repoRoot,
    env: shellEnv({ DATABASE_URL: databaseUrl }),
  });
let migrateOutput = "";

const failureOf = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected the command to fail");
    },
    (error: { code: number; stdout: string; stderr: string }) => error,
  );

beforeAll(async () => {
  const admin = new URL(databaseUrl);
  const name = admin.pathname.slice(1);
  admin.pathname = "/postgres";
  await onServer(admin.toString(), async (client) => {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name}"`);
  });
  migrateOutput = (await migrate()).stdout;
}, 120_000);
afterAll(() => rmSync(storageDir, { recursive: true, force: true }));

describe("pnpm --filter @zigznote/database migrate", () => {
  it("applies every committed migration to the new database, naming each, then finds nothing to do", async () => {
    const committed = committedMigrations();
    expect(migrateOutput).toContain(`${committed.length} migrations applied:`);
    for (const name of committed) expect(migrateOutput).toContain(`  ${name}\n`);
    const applied = await onServer(databaseUrl, (client) =>
      client.query<{ count: string }>(
        "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL",
      ),
    );
    expect(Number(applied.rows[0]!.count)).toBe(committed.length);

    expect((await migrate()).stdout).toContain("the database is up to date: no migration to apply");
  }, 60_000);
});

describe("pnpm -s --filter @zigznote/api api-key:create", () => {
  let key: string;
  let organizationId: string;

  it("creates the organization and a key on a fresh database, printing the key alone on the last line", async () => {
    const { stdout, stderr } = await apiKeyCreate(["--org", "acme", "--name", "ops"]);
    const lines = stdout.trimEnd().split("\n");
    key = lines.at(-1)!;
    expect(key).toMatch(/^zn_live_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
    expect(stderr).toMatch(/created organization "acme" \(([0-9a-f-]{36})\)/);
    organizationId = /\(([0-9a-f-]{36})\)/.exec(stderr)![1]!;

    const stored = await onServer(databaseUrl, (client) =>
      client.query<{ prefix: string; secret_hash: string; scopes: string[] }>(
        "SELECT prefix, secret_hash, scopes FROM api_keys WHERE organization_id = $1",
        [organizationId],
      ),
    );
    expect(stored.rows).toHaveLength(1);
    const [row] = stored.rows;
    expect(key).toContain(row!.prefix);
    // Only the hash is kept: the secret is in no column.
    const secret = key.slice("zn_live_".length + 13, -6);
    expect(row!.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored.rows)).not.toContain(secret);
    expect(row!.scopes).toEqual(expect.arrayContaining(["meetings:read", "billing:write"]));
  }, 120_000);

  it("lets the key into the API started on that database: GET /api/v1/meetings answers 200", async () => {
    const running = await startServer(quietServerConfig(databaseUrl, storageDir));
    try {
      const res = await fetch(`http://127.0.0.1:${running.port}/api/v1/meetings`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ data: [] });
      const me = await fetch(`http://127.0.0.1:${running.port}/api/v1/me`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(await me.json()).toMatchObject({
        kind: "apiKey",
        organization: { id: organizationId, name: "acme" },
      });
    } finally {
      await running.close();
    }
  }, 60_000);

  it("gives a second key to the organization it finds by name, with the scopes asked for", async () => {
    const { stdout, stderr } = await apiKeyCreate([
      "--org",
      "acme",
      "--name",
      "ci",
      "--scopes",
      "meetings:read,meetings:write",
      "--expires-in",
      "90d",
    ]);
    expect(stderr).toContain(`found organization "acme" (${organizationId})`);
    expect(stdout.trim().split("\n").at(-1)).not.toBe(key);
    const rows = await onServer(databaseUrl, (client) =>
      client.query<{ name: string; scopes: string[]; expires: boolean }>(
        "SELECT name, scopes, expires_at > now() + interval '89 days' AS expires FROM api_keys WHERE organization_id = $1 ORDER BY created_at",
        [organizationId],
      ),
    );
    expect(rows.rows.map((row) => row.name)).toEqual(["ops", "ci"]);
    expect(rows.rows[1]).toMatchObject({
      scopes: ["meetings:read", "meetings:write"],
      expires: true,
    });
  }, 120_000);

  it("refuses unknown scopes and missing arguments with a usage message, writing nothing", async () => {
    const count = () =>
      onServer(databaseUrl, async (client) => {
        const result = await client.query<{ n: number }>(
          "SELECT (SELECT count(*) FROM api_keys)::int + (SELECT count(*) FROM organizations)::int AS n",
        );
        return result.rows[0]!.n;
      });
    const before = await count();
    const badScope = await failureOf(
      apiKeyCreate(["--org", "other", "--name", "x", "--scopes", "meetings:read,admin:all"]),
    );
    expect(badScope.code).toBe(2);
    expect(badScope.stdout).toBe("");
    expect(badScope.stderr).toContain("unknown scope(s): admin:all");
    const noName = await failureOf(apiKeyCreate(["--org", "other"]));
    expect(noName.code).toBe(2);
    expect(noName.stderr).toContain("usage: api-key:create");
    const unknownId = await failureOf(
      apiKeyCreate(["--org", "00000000-0000-4000-8000-000000000000", "--name", "x"]),
    );
    expect(unknownId.code).toBe(1);
    expect(unknownId.stderr).toContain("no organization has the id");
    expect(await count()).toBe(before);
  }, 120_000);
});
