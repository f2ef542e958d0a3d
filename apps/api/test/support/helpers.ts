import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { uniqueSuffix } from "@zigznote/database/testing";
import type { Express } from "express";
import { Redis } from "ioredis";
import { appOpenApiDocument, createApp, type AppOptions } from "../../src/app";
import { loadConfig } from "../../src/config";
import { buildContext, type AppContext, type ContextParts } from "../../src/context";
import { ManualClock, type Clock } from "../../src/lib/clock";
import type { Logger } from "../../src/lib/logger";
import { logRedisConnection, redisClientOptions } from "../../src/lib/redisOptions";
import { LocalDiskStorage, type StorageProvider } from "../../src/recordings/storage";
import { clerkTestEnv } from "./auth";
import { testDatabaseUrl, testRedisUrl } from "./env";
import { checkResponsesAgainst } from "./openApiConformance";

export interface TestContextOptions {
  /** Environment variables on top of the test defaults (as the server would read them). */
  env?: Record<string, string>;
  clock?: Clock;
  /** Connect to the real Redis at TEST_REDIS_URL (or at this URL: a proxy in front of it). */
  redis?: boolean | string;
  /**
   * Whether Redis commands sent before the connection is ready wait for it (default: true, so
   * that tests can send requests the moment the app exists); false is the server's own client.
   */
  redisOfflineQueue?: boolean;
  db?: PrismaClient;
  /** Options of `createApp`. */
  app?: AppOptions;
  /** Adjusts the app's webhook handlers (wrap one to make it fail, say). */
  configureWebhooks?: ContextParts["configureWebhooks"];
  /** Adjusts the app's jobs (add one that blocks or fails, say). */
  configureJobs?: ContextParts["configureJobs"];
  /** The app's logger (default: one at LOG_LEVEL, silent unless set). */
  logger?: Logger;
  /** Where recordings go (default: a fresh folder on local disk). */
  storage?: StorageProvider;
  /** The Recall client (default: one configured by RECALL_* in `env`). */
  recall?: ContextParts["recall"];
}

export interface TestApp {
  ctx: AppContext;
  /** The app; each of its responses is checked against its OpenAPI document (setupOpenApi.ts). */
  app: Express;
  close(): Promise<void>;
}

/**
 * A real app on the test database (and real Redis when asked), with a test clock if given.
 * It trusts session JWTs from `signClerkToken` (test/support/auth.ts): CLERK_JWT_KEY is the test key
 * pair's public half unless `env` says otherwise.
 */
export function createTestApp(options: TestContextOptions = {}): TestApp {
  // Each app gets its own storage folder unless the test names one.
  const storageDir =
    options.env?.STORAGE_DIR ?? mkdtempSync(path.join(tmpdir(), "zigznote-storage-"));
  const config = loadConfig({
    STORAGE_DIR: storageDir,
    NODE_ENV: "test",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
    DATABASE_URL: testDatabaseUrl,
    JOBS_ENABLED: "false",
    ...clerkTestEnv(),
    // Redis is shared by every suite on the machine: each app gets its own key space unless
    // the test shares one on purpose (two instances of one deployment).
    REDIS_KEY_PREFIX: `test-${uniqueSuffix()}`,
    // Suites send hundreds of requests a minute from one address and organization: budgets are
    // out of their way unless a test sets its own (test/http/rateLimit.int.test.ts).
    RATE_LIMIT_PER_MINUTE_FREE: "1000000",
    RATE_LIMIT_PER_MINUTE_PRO: "1000000",
    RATE_LIMIT_PER_MINUTE_BUSINESS: "1000000",
    RATE_LIMIT_PER_MINUTE_UNAUTHENTICATED: "1000000",
    ...options.env,
  });
  const ownsDb = options.db === undefined;
  const db = options.db ?? createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
  const redis = options.redis
    ? new Redis(typeof options.redis === "string" ? options.redis : testRedisUrl, {
        ...redisClientOptions,
        // Tests send requests the moment the app exists: commands wait for the connection.
        enableOfflineQueue: options.redisOfflineQueue ?? true,
      })
    : null;
  const ctx: AppContext = buildContext({
    config,
    db,
    redis,
    logger: options.logger,
    clock: options.clock,
    storage: options.storage ?? new LocalDiskStorage(storageDir),
    configureWebhooks: options.configureWebhooks,
    configureJobs: options.configureJobs,
    recall: options.recall,
  });
  // As the server does: the first error of an outage logged, not an unhandled error event on
  // every reconnection.
  if (redis) logRedisConnection(redis, ctx.logger);
  return {
    ctx,
    app: checkResponsesAgainst(createApp(ctx, options.app), appOpenApiDocument(ctx.routes)),
    async close() {
      if (ownsDb) await db.$disconnect();
      // Dropped when Redis is unreachable (a test's proxy closed): quit is refused then.
      if (redis) await redis.quit().catch(() => redis.disconnect());
      if (!options.env?.STORAGE_DIR) rmSync(storageDir, { recursive: true, force: true });
    },
  };
}

export { ManualClock };
