// First: tracing must be set up before the modules it instruments are loaded (instrument.ts).
import { tracing } from "./instrument";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import path from "node:path";
import {
  createPrismaClient,
  EmbeddedDatabaseInUseError,
  type CreatePrismaClientOptions,
  pendingMigrations,
  PendingMigrationsError,
  runMigrations,
  seedPlans,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from "@zigznote/database";
import type { Express } from "express";
import { Redis } from "ioredis";
import { createApp, type AppOptions } from "./app";
import { answerClientError } from "./http/clientError";
import { loadConfigOrReport, type Config } from "./config";
import { buildContext, type AppContext } from "./context";
import { createJobScheduler } from "./jobs";
import { describeSignInMethods } from "./identity";
import { openDevSessionKey } from "./lib/devSessionKey";
import { openStorage, StorageConfigError } from "./recordings";
import { createLogger, type Logger } from "./lib/logger";
import { logRedisConnection, redisClientOptions } from "./lib/redisOptions";

/** Something to stop on shutdown after the HTTP server has drained (jobs, consumers). */
export type StopHook = () => Promise<void> | void;

export interface RunningServer {
  ctx: AppContext;
  server: Server;
  port: number;
  /**
   * Stops accepting, closes idle connections, lets in-flight requests finish (closing their
   * connections after them), stops jobs, closes the database.
   */
  close(): Promise<void>;
}

/**
 * The database to use: DATABASE_URL, or the embedded one when it is unset. The server starts the
 * embedded database (and refuses a folder another process serves); tools beside it
 * (`shareRunning`: the job and api-key commands) connect to the running server's instead.
 */
export async function openDatabase(
  config: Config,
  logger: Logger,
  options: { shareRunning?: boolean } = {},
): Promise<{ url: string; embedded: EmbeddedPostgres | null }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, embedded: null };
  const dataDir = path.resolve(config.EMBEDDED_DB_DIR);
  logger.info({ dataDir }, "DATABASE_URL is not set: opening the embedded PostgreSQL (PGlite)");
  const embedded = await startEmbeddedPostgres({
    dataDir,
    port: config.EMBEDDED_DB_PORT,
    // The kernel may pick the API's own port for it while that is still free (PORT in the
    // ephemeral range): the API would then fail to listen, after the whole start. (PORT=0
    // matches no port the kernel gives.)
    avoidPorts: [config.PORT],
    shareRunning: options.shareRunning,
    onError: (error) => logger.error({ err: error }, "embedded PostgreSQL failed a statement"),
  });
  logger.info(
    { port: embedded.port },
    embedded.isOwner
      ? "embedded PostgreSQL is serving"
      : "embedded PostgreSQL is served by a running API: connected to it",
  );
  return { url: embedded.url, embedded };
}

/** The instance's database pool and timeouts, from the configuration. */
export function databaseClientOptions(config: Config): CreatePrismaClientOptions {
  return {
    maxConnections: config.DATABASE_POOL_SIZE,
    connectionTimeoutMs: config.DATABASE_POOL_TIMEOUT_MS,
    statementTimeoutMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
  };
}

/**
 * Lets go of keep-alive connections once shutdown begins (call the returned function then): idle
 * connections close at once, every response from then on carries `Connection: close` (Node
 * closes the socket after it), and a response whose headers had already gone out closes its
 * socket when it ends. Without this, a keep-alive client is served until the shutdown timeout.
 */
function closeConnectionsOnShutdown(server: Server): () => void {
  let isClosing = false;
  const inFlight = new Set<ServerResponse>();
  const closeAfter = (res: ServerResponse) => {
    if (!res.headersSent) {
      res.setHeader("Connection", "close");
      return;
    }
    // Too late for the header: end the socket (captured now: it is detached on finish).
    const socket: Socket | null = res.socket;
    res.once("finish", () => socket?.end());
  };
  // Before the app's own listener, so the header is set before any handler answers.
  server.prependListener("request", (_req, res: ServerResponse) => {
    if (isClosing) {
      closeAfter(res);
      return;
    }
    inFlight.add(res);
    res.once("close", () => inFlight.delete(res));
  });
  return () => {
    isClosing = true;
    for (const res of inFlight) closeAfter(res);
    server.closeIdleConnections();
  };
}

/** The port is taken (or not ours to bind): said in one line that says what to do. */
export class ListenError extends Error {
  constructor(host: string, port: number, cause: NodeJS.ErrnoException) {
    super(
      cause.code === "EADDRINUSE"
        ? `${host}:${port} is already in use: stop what listens there, or set PORT (and HOST)`
        : `cannot listen on ${host}:${port} (${cause.code ?? cause.message}): check PORT and HOST`,
      { cause },
    );
    this.name = "ListenError";
  }
}

/**
 * Listens on PORT and HOST; resolves once the server accepts connections. Not `app.listen`:
 * Express 5 calls its callback with a listen error too, so a taken port looked like a start.
 */
function listen(app: Express, config: Config, logger: Logger): Promise<Server> {
  const server = createServer(app);
  server.on("clientError", answerClientError(logger));
  return new Promise<Server>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(new ListenError(config.HOST, config.PORT, error));
    server.once("error", onError);
    server.listen(config.PORT, config.HOST, () => {
      server.off("error", onError);
      resolve(server);
    });
  });
}

/**
 * Starts the API: database (embedded when DATABASE_URL is unset), migrations, plans, Redis, the
 * context and the app, HTTP, the jobs. Every step runs inside one cleanup: when any step fails,
 * what the earlier steps opened is closed (in reverse order) before the error is thrown, so a
 * failed start leaves no database, Redis connection or embedded database's folder held.
 */
export async function startServer(
  config: Config,
  stopHooks: StopHook[] = [],
  appOptions: AppOptions = {},
): Promise<RunningServer> {
  const logger = createLogger(config.LOG_LEVEL);
  tracing?.reportProblemsTo(logger);
  // What is open so far, most recent last: a failed step closes these, newest first.
  const opened: (() => Promise<void>)[] = [];
  try {
    // The embedded database is the one used when DATABASE_URL is unset (openDatabase).
    const devKey = openDevSessionKey(config, !config.DATABASE_URL);
    const { url, embedded } = await openDatabase(config, logger);
    if (embedded) opened.push(() => embedded.stop());
    // With S3, the bucket is checked now: a missing bucket or refused credentials stop the start.
    const storage = await openStorage(config, logger);
    // The embedded database always migrates; an external one only when asked (deploys
    // usually run `pnpm --filter @zigznote/database migrate` as their own step).
    if (config.MIGRATE_ON_START ?? embedded !== null) {
      logger.info("checking database migrations");
      const { applied } = await runMigrations(url, {
        onWait: () => logger.info("another instance is applying the migrations: waiting for it"),
      });
      logger.info(
        { applied },
        applied.length > 0
          ? `applied ${applied.length} database migration(s)`
          : "database schema is up to date",
      );
    } else {
      // A deploy whose migrate step was forgotten or has not run yet: refused here, rather than
      // healthy with writes failing on a missing table or procedure.
      const pending = await pendingMigrations(url);
      if (pending.length > 0) throw new PendingMigrationsError(pending);
    }
    const db = createPrismaClient(url, databaseClientOptions(config));
    opened.push(() => db.$disconnect());
    await seedPlans(db, {
      stripePriceIds: { pro: config.STRIPE_PRICE_PRO, business: config.STRIPE_PRICE_BUSINESS },
    });
    let redis: Redis | null = null;
    if (config.REDIS_URL) {
      const client = new Redis(config.REDIS_URL, redisClientOptions);
      logRedisConnection(client, logger);
      opened.push(() => closeRedis(client));
      redis = client;
    }

    const ctx: AppContext = buildContext({
      config,
      db,
      logger,
      redis,
      storage,
      devSessionPublicKey: devKey.publicKeyPem,
    });
    logger.info(describeSignInMethods(config, devKey.publicKeyPem, devKey.refusal));
    const app = createApp(ctx, appOptions);
    const server = await listen(app, config, logger);
    opened.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const address = server.address();
    const port = address && typeof address === "object" ? address.port : config.PORT;
    const closeConnections = closeConnectionsOnShutdown(server);
    logger.info(
      { port, host: config.HOST, embeddedDatabase: embedded !== null },
      "zigznote API listening",
    );
    if (tracing) {
      const { url: endpoint, protocol, sampler, serviceName } = tracing.settings;
      // The receiver's origin only: its path is standard and its headers may hold an API key.
      logger.info(
        { endpoint: new URL(endpoint).origin, protocol, sampler, serviceName },
        "OpenTelemetry tracing on",
      );
    }

    // Every instance schedules the jobs; the runner lets one of them execute each tick.
    const scheduler = createJobScheduler(ctx, ctx.jobs, {
      timezone: config.CRON_TIMEZONE,
      start: config.JOBS_ENABLED,
    });
    // After the last request: stop the jobs, then let after-commit work (copies, notices,
    // provider calls) finish.
    const hooks: StopHook[] = [
      () => scheduler.stop(),
      () => ctx.webhooks.idle(),
      () => ctx.providerCalls.idle(),
      () => ctx.notices.idle(),
      ...stopHooks,
    ];

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        logger.info("shutting down: no new connections, draining in-flight requests");
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        closeConnections();
        const timer = setTimeout(() => {
          logger.warn("shutdown timeout reached: closing remaining connections");
          server.closeAllConnections();
        }, config.SHUTDOWN_TIMEOUT_MS);
        await drained;
        clearTimeout(timer);
        for (const hook of hooks) await hook();
        await db.$disconnect();
        if (redis) await closeRedis(redis);
        await embedded?.stop();
        logger.info("shutdown complete");
      })());

    return { ctx, server, port, close };
  } catch (error) {
    for (const close of opened.reverse()) {
      await close().catch((closeError: unknown) =>
        logger.warn({ err: closeError }, "closing after a failed start failed"),
      );
    }
    throw error;
  }
}

/** Quits politely (pending replies first), or drops the connection when Redis is unreachable. */
async function closeRedis(redis: Redis): Promise<void> {
  await redis.quit().catch(() => redis.disconnect());
}

async function main(): Promise<void> {
  const config = loadConfigOrReport();
  if (!config) process.exit(1);
  // A signal while starting (a migration may be running: stopped halfway, it would be left failed
  // for every later start) is held until the start is done, then the server stops at once. A
  // second signal is not held: it ends the process.
  let heldSignal: NodeJS.Signals | null = null;
  const hold = (signal: NodeJS.Signals) => {
    process.off("SIGTERM", hold);
    process.off("SIGINT", hold);
    heldSignal = signal;
    createLogger(config.LOG_LEVEL).warn(
      { signal },
      "signal received while starting: stopping once the start is done (another signal stops now)",
    );
  };
  process.on("SIGTERM", hold);
  process.on("SIGINT", hold);
  // Spans still buffered go out once the last request and job are done.
  const active = tracing;
  const running = await startServer(config, active ? [() => active.shutdown()] : []);
  process.off("SIGTERM", hold);
  process.off("SIGINT", hold);
  const shutdown = (signal: string) => {
    running.ctx.logger.info({ signal }, "signal received");
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        running.ctx.logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  if (heldSignal !== null) {
    shutdown(heldSignal);
    return;
  }
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

if (require.main === module) {
  main().catch((error: unknown) => {
    // An operator's situation (a folder in use, a storage setting, a taken port) is said in
    // one line that says what to do; anything else in full.
    if (
      error instanceof EmbeddedDatabaseInUseError ||
      error instanceof PendingMigrationsError ||
      error instanceof StorageConfigError ||
      error instanceof ListenError
    ) {
      console.error(`zigznote API failed to start: ${error.message}`);
    } else {
      console.error("zigznote API failed to start:", error);
    }
    process.exit(1);
  });
}
