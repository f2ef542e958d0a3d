import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { uniqueSuffix } from "@zigznote/database/testing";
import { Client } from "pg";
import { loadConfig } from "../../src/config";
import { ListenError, startServer } from "../../src/server";
import { testDatabaseUrl, testRedisUrl } from "../support/env";
import {
  exitOf,
  startProcess,
  stopProcess,
  waitForHealth,
  type StartedProcess,
} from "../support/serverProcess";

/**
 * A start that fails after the database and Redis are open (here: the HTTP port is taken, the
 * last step) closes everything it opened: the embedded database lets go of its folder, the
 * database pool and the Redis connection are closed, and the process says why in one line and
 * exits non-zero.
 */

/** Holds a port on 127.0.0.1 the way another program would. */
async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The sockets and servers this process holds (Node's own view of its open resources). */
function openSockets(): number {
  return process
    .getActiveResourcesInfo()
    .filter((resource) => resource === "TCPSocketWrap" || resource === "TCPServerWrap").length;
}

describe("startServer when a step after the database and Redis fails", () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "zigznote-startfail-"));
  const keyDir = mkdtempSync(path.join(tmpdir(), "zigznote-devkey-"));
  let failed: StartedProcess | undefined;
  let second: StartedProcess | undefined;
  afterAll(async () => {
    // Only when an assertion failed early: each is stopped (or has exited) by then otherwise.
    if (failed) await stopProcess(failed);
    if (second) await stopProcess(second);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  });

  it("on the embedded database: exits 1 saying the port is in use, and releases the folder for the next start", async () => {
    const taken = await holdPort();
    const env = {
      HOST: "127.0.0.1",
      EMBEDDED_DB_DIR: dataDir,
      DEV_SESSION_KEY_FILE: path.join(keyDir, "dev-session-key.pem"),
      LOG_LEVEL: "info",
      JOBS_ENABLED: "false",
    };
    try {
      failed = startProcess({ ...env, PORT: String(taken.port) });
      // A fresh folder is created and migrated first: a minute, more on a busy machine.
      expect(await exitOf(failed, 240_000)).toBe(1);
      const output = failed.output();
      // It got as far as the database (migrated and served) before the port refused it.
      expect(output).toMatch(/embedded PostgreSQL is serving/);
      expect(output).toContain(
        `zigznote API failed to start: 127.0.0.1:${taken.port} is already in use`,
      );
      // The readable line, not a stack trace.
      expect(output).not.toMatch(/\n\s+at /);
      // The embedded database was stopped: its owner file is gone (a killed owner leaves it).
      expect(existsSync(path.join(dataDir, "zigznote-server.json"))).toBe(false);
    } finally {
      await taken.release();
    }

    // The folder is free and its data intact: the next start serves from it.
    second = startProcess({ ...env, PORT: "0" });
    const { health } = await waitForHealth(second, 120_000);
    const body = (await health.json()) as { checks: { database: { status: string } } };
    expect(body.checks.database.status).toBe("up");
    expect(await stopProcess(second)).toBe(0);
    second = undefined;
  }, 420_000);

  it("on DATABASE_URL and REDIS_URL: rejects with ListenError and leaves no connection open", async () => {
    const taken = await holdPort();
    // The pool's connections carry this name, so the database can say whether any is left.
    const applicationName = `zigznote-startfail-${uniqueSuffix()}`;
    const databaseUrl = new URL(testDatabaseUrl);
    databaseUrl.searchParams.set("application_name", applicationName);
    const config = loadConfig({
      NODE_ENV: "test",
      LOG_LEVEL: "silent",
      DATABASE_URL: databaseUrl.toString(),
      REDIS_URL: testRedisUrl,
      JOBS_ENABLED: "false",
      HOST: "127.0.0.1",
      PORT: String(taken.port),
      STORAGE_DIR: dataDir,
    });
    const socketsBefore = openSockets();
    try {
      const started = startServer(config);
      await expect(started).rejects.toBeInstanceOf(ListenError);
      await expect(started).rejects.toThrow(`127.0.0.1:${taken.port} is already in use`);
    } finally {
      await taken.release();
    }
    // No socket of the pool or of Redis is left once their closing completes (well before the
    // pool's idle timeout would close its connections by itself); the held port is released.
    const deadline = Date.now() + 3_000;
    while (openSockets() >= socketsBefore && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(openSockets()).toBeLessThanOrEqual(socketsBefore - 1);

    const client = new Client({ connectionString: testDatabaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ count: string }>(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
        [applicationName],
      );
      expect(Number(rows[0]!.count)).toBe(0);
    } finally {
      await client.end();
    }
  });
});
