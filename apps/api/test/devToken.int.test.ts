import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadConfig } from "../src/config";
import { startServer as startServerInProcess } from "../src/server";
import { testDatabaseUrl } from "./env";

/**
 * The newcomer's way in: `pnpm start` (built server, embedded database, no Clerk), then
 * `pnpm -s dev:token --org acme --role admin` from the repository root, then GET /api/v1/me with
 * the token answers 200. The same key is not trusted in production nor on an external database.
 */

const repoRoot = path.resolve(__dirname, "../../..");
const serverEntry = path.resolve(__dirname, "../dist/server.js");
const run = promisify(execFile);

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

/** The environment of a newcomer's shell: nothing of ours, no Clerk, no database URL. */
function newcomerEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of ["DATABASE_URL", "REDIS_URL", "CLERK_JWT_KEY", "CLERK_SECRET_KEY"]) {
    if (!(name in env)) delete childEnv[name];
  }
  if (!("NODE_ENV" in env)) delete childEnv.NODE_ENV;
  return childEnv;
}

interface Started {
  child: ChildProcess;
  output: () => string;
}

function spawnServer(env: Record<string, string>): Started {
  const child = spawn(process.execPath, [serverEntry], {
    env: newcomerEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

async function waitForHealth(port: number, started: Started): Promise<void> {
  for (;;) {
    if (started.child.exitCode !== null) {
      throw new Error(`server exited early:\n${started.output()}`);
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function stop(started: Started): Promise<void> {
  if (started.child.exitCode !== null) return;
  const exited = new Promise((resolve) => started.child.once("exit", resolve));
  started.child.kill("SIGTERM");
  await exited;
}

const signInLine = (output: string): string => {
  const line = output
    .split("\n")
    .filter((text) => text.startsWith("{"))
    .map((text) => JSON.parse(text) as { msg: string })
    .find((entry) => entry.msg.startsWith("sign-in: "));
  if (!line) throw new Error(`no sign-in line in:\n${output}`);
  return line.msg;
};

const me = (port: number, token: string) =>
  fetch(`http://127.0.0.1:${port}/api/v1/me`, { headers: { Authorization: `Bearer ${token}` } });

describe("pnpm dev:token (development sign-in)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "zigznote-devtoken-"));
  const keyFile = path.join(dir, "dev-session-key.pem");
  const base = {
    HOST: "127.0.0.1",
    EMBEDDED_DB_DIR: path.join(dir, "pglite"),
    DEV_SESSION_KEY_FILE: keyFile,
    LOG_LEVEL: "info",
    JOBS_ENABLED: "false",
  };
  let token: string;
  const servers: Started[] = [];
  afterAll(async () => {
    for (const server of servers) await stop(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives a development server on the embedded database a token that GET /api/v1/me accepts", async () => {
    const port = await freePort();
    const server = spawnServer({ ...base, PORT: String(port) });
    servers.push(server);
    await waitForHealth(port, server);
    expect(signInLine(server.output())).toMatch(/^sign-in: development session tokens from/);
    // The server made the key; only its owner may read it.
    expect(statSync(keyFile).mode & 0o077).toBe(0);

    const { stdout, stderr } = await run(
      "pnpm",
      ["-s", "dev:token", "--org", "acme", "--role", "admin"],
      { cwd: repoRoot, env: newcomerEnv({ DEV_SESSION_KEY_FILE: keyFile }) },
    );
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
    const member = await run("pnpm", ["-s", "dev:token", "--user", "bo", "--role", "member"], {
      cwd: repoRoot,
      env: newcomerEnv({ DEV_SESSION_KEY_FILE: keyFile }),
    });
    const memberRes = await me(port, member.stdout.trim());
    expect(memberRes.status).toBe(200);
    expect(await memberRes.json()).toMatchObject({
      organization: { name: "acme" },
      role: "member",
    });
    await stop(server);
  }, 180_000);

  it("is not trusted with NODE_ENV=production, which dev:token itself refuses too", async () => {
    const port = await freePort();
    const server = spawnServer({ ...base, PORT: String(port), NODE_ENV: "production" });
    servers.push(server);
    await waitForHealth(port, server);
    expect(signInLine(server.output())).toMatch(
      /^sign-in: API keys only; .*dev:token is not trusted: NODE_ENV is production/,
    );
    const res = await me(port, token);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "SESSION_AUTH_NOT_CONFIGURED",
    );
    await stop(server);

    const refused = await run("pnpm", ["-s", "dev:token"], {
      cwd: repoRoot,
      env: newcomerEnv({ DEV_SESSION_KEY_FILE: keyFile, NODE_ENV: "production" }),
    }).then(
      () => null,
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(refused).toMatchObject({ code: 1, stdout: "" });
    expect(refused!.stderr).toContain("NODE_ENV is production");
  }, 120_000);

  it("is not trusted on an external database (DATABASE_URL set)", async () => {
    const config = loadConfig({
      ...base,
      PORT: "0",
      LOG_LEVEL: "silent",
      DATABASE_URL: testDatabaseUrl,
      STORAGE_DIR: path.join(dir, "storage"),
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

  it("a CLERK_JWT_KEY the server cannot use stops the start, naming the variable", async () => {
    const server = spawnServer({ ...base, PORT: "0", CLERK_JWT_KEY: "not a pem" });
    const code = await new Promise((resolve) => server.child.once("exit", resolve));
    expect(code).toBe(1);
    expect(server.output()).toMatch(/Invalid configuration:\n {2}- CLERK_JWT_KEY: /);
  });
});
