/**
 * One server of `pnpm bench:api`, in its own process (forked by bench/api.ts, which talks to it
 * over IPC): `app` is the API as `startServer` runs it in production, `bare` the baseline of
 * bench/apiBare.ts, `bare-before` that baseline with the create guarded as it was until issue 22
 * (a check before the insert; bench/limits.ts), `before` the API without its tracing hook. The
 * app answers `profile-start` / `profile-stop` with the inspector's CPU
 * profiler, so a profile covers only the load the parent chooses.
 *
 * Env (set by the parent): BENCH_DATABASE_URL, BENCH_POOL_SIZE, BENCH_REDIS_URL (app-redis).
 */
// First: in the traced server (OTEL_EXPORTER_OTLP_ENDPOINT set by the parent) tracing starts
// here, before http and pg are loaded, as in server.ts; elsewhere it does nothing.
import "../src/instrument";
import type { Server } from "node:http";
import { writeFile } from "node:fs/promises";
import { Session } from "node:inspector/promises";
import type { AddressInfo } from "node:net";
import { Pool } from "pg";
import { loadConfig } from "../src/config";
import { startServer } from "../src/server";
import { createBareApp } from "./apiBare";

/**
 * `app`: the API as in production without Redis (request budgets in memory); `app-redis`: with
 * Redis (budgets, key lockout and revocation markers there); `-unlimited`: the same with
 * RATE_LIMIT_ENABLED=false; `before`: `app` without its request tracing hook (the API as it was
 * before tracing, for bench/apiTracing.ts); `bare`: the baseline; `bare-before`: the baseline
 * with the create guarded as before issue 22. Tracing itself is on when the parent passes an
 * OTLP endpoint in the environment.
 */
export type ServerKind =
  "app" | "app-unlimited" | "app-redis" | "app-redis-unlimited" | "before" | "bare" | "bare-before";

export type ParentMessage =
  | { id: number; type: "profile-start" }
  | { id: number; type: "profile-stop"; file: string }
  | { id: number; type: "usage"; afterGc?: boolean }
  | { id: number; type: "close" };

export type ChildMessage =
  | { type: "ready"; port: number }
  | {
      id: number;
      type: "done";
      usage?: {
        rssBytes: number;
        cpuMicros: number;
        heapUsedBytes?: number;
        heapTotalBytes?: number;
        externalBytes?: number;
      };
    }
  | { id: number; type: "failed"; message: string };

const kind = process.argv[2] as ServerKind;
const databaseUrl = process.env.BENCH_DATABASE_URL!;
const poolSize = process.env.BENCH_POOL_SIZE ?? "10";

function send(message: ChildMessage): void {
  process.send!(message);
}

async function start(): Promise<{ server: Server; close: () => Promise<void> }> {
  if (kind === "before" || kind.startsWith("app")) {
    const running = await startServer(
      loadConfig({
        NODE_ENV: "production",
        HOST: "127.0.0.1",
        PORT: "0",
        LOG_LEVEL: "silent",
        DATABASE_URL: databaseUrl,
        DATABASE_POOL_SIZE: poolSize,
        MIGRATE_ON_START: "false",
        JOBS_ENABLED: "false",
        SHUTDOWN_TIMEOUT_MS: "1000",
        // Every request is counted, none refused: the bench measures the count, not 429s.
        RATE_LIMIT_PER_MINUTE_FREE: "1000000000",
        RATE_LIMIT_PER_MINUTE_PRO: "1000000000",
        RATE_LIMIT_PER_MINUTE_BUSINESS: "1000000000",
        RATE_LIMIT_ENABLED: kind.endsWith("-unlimited") ? "false" : "true",
        ...(kind.startsWith("app-redis")
          ? {
              REDIS_URL: process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379",
              REDIS_KEY_PREFIX: `bench-api-${process.pid}`,
            }
          : {}),
      }),
      [],
      { isTracingOmitted: kind === "before" },
    );
    return { server: running.server, close: () => running.close() };
  }
  const pool = new Pool({
    connectionString: databaseUrl,
    max: Number(poolSize),
    connectionTimeoutMillis: 5_000,
  });
  const server = await new Promise<Server>((resolve) => {
    const app = createBareApp(pool, {
      createGuard: kind === "bare-before" ? "before" : "transaction",
    });
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  return {
    server,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.end();
    },
  };
}

async function main(): Promise<void> {
  const { server, close } = await start();
  const profiler = new Session();
  profiler.connect();

  process.on("message", (message: ParentMessage) => {
    const handle = async (): Promise<ChildMessage> => {
      switch (message.type) {
        case "profile-start":
          await profiler.post("Profiler.enable");
          await profiler.post("Profiler.start");
          return { id: message.id, type: "done" };
        case "profile-stop": {
          const { profile } = await profiler.post("Profiler.stop");
          await writeFile(message.file, JSON.stringify(profile));
          return { id: message.id, type: "done" };
        }
        case "usage": {
          // Run with --expose-gc (the parent does): a reading after a full collection.
          if (message.afterGc) globalThis.gc?.();
          const cpu = process.cpuUsage();
          const memory = process.memoryUsage();
          const usage = {
            rssBytes: memory.rss,
            cpuMicros: cpu.user + cpu.system,
            heapUsedBytes: memory.heapUsed,
            heapTotalBytes: memory.heapTotal,
            externalBytes: memory.external,
          };
          return { id: message.id, type: "done", usage };
        }
        case "close":
          await close();
          profiler.disconnect();
          return { id: message.id, type: "done" };
      }
    };
    handle().then(
      (reply) => {
        send(reply);
        if (message.type === "close") process.disconnect();
      },
      (error: unknown) => send({ id: message.id, type: "failed", message: String(error) }),
    );
  });
  // The parent died or disconnected: do not outlive it.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready", port: (server.address() as AddressInfo).port });
}

main().catch((error: unknown) => {
  console.error(`bench:api ${kind} server failed to start:`, error);
  process.exit(1);
});
