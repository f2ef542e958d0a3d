/**
 * One server of `pnpm bench:api`'s embedded-database rows, in its own process (forked by
 * bench/apiEmbedded.ts): the API as `startServer` runs it, with PGlite in the same process as
 * `pnpm start` has it, in one of three set-ups:
 *
 * - `before`: @electric-sql/pglite-socket 0.2's server in front of PGlite (what the API used
 *   before), the app's usual pool of 10 connections;
 * - `one-connection`: the same server, the app's pool cut to one connection;
 * - `after`: `pnpm start` as it is (no DATABASE_URL): the session server of
 *   packages/database/src/embeddedServer.ts, a pool of 10.
 *
 * argv: <variant> <data folder> (a copy of a migrated and seeded PGlite folder).
 */
import net from "node:net";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";

export type EmbeddedVariant = "before" | "one-connection" | "after";

export type EmbeddedChildMessage =
  { type: "ready"; port: number } | { type: "failed"; message: string };

const variant = process.argv[2] as EmbeddedVariant;
const dataDir = process.argv[3]!;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  const common = {
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "silent",
    JOBS_ENABLED: "false",
    SHUTDOWN_TIMEOUT_MS: "1000",
    STORAGE_DIR: `${dataDir}-storage`,
    // The load is far beyond a plan's request budget.
    RATE_LIMIT_ENABLED: "false",
  };
  let env: Record<string, string>;
  if (variant === "after") {
    env = { ...common, EMBEDDED_DB_DIR: dataDir };
  } else {
    const db = await PGlite.create({ dataDir });
    const port = await freePort();
    await new PGLiteSocketServer({ db, host: "127.0.0.1", port, maxConnections: 20 }).start();
    env = {
      ...common,
      DATABASE_URL: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
      DATABASE_POOL_SIZE: variant === "before" ? "10" : "1",
      MIGRATE_ON_START: "false",
    };
  }
  const running = await startServer(loadConfig(env));
  process.send!({ type: "ready", port: running.port } satisfies EmbeddedChildMessage);
}

main().catch((error: unknown) => {
  process.send!({ type: "failed", message: String(error) } satisfies EmbeddedChildMessage);
  process.exit(1);
});
