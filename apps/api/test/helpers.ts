import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import type { Express } from "express";
import { Redis } from "ioredis";
import { createApp, type CreateAppOptions } from "../src/app";
import { loadConfig } from "../src/config";
import type { AppContext } from "../src/context";
import { ManualClock, systemClock, type Clock } from "../src/lib/clock";
import { createLogger } from "../src/lib/logger";
import { createMetrics } from "../src/lib/metrics";
import { testDatabaseUrl, testRedisUrl } from "./env";

export interface TestContextOptions {
  /** Environment variables on top of the test defaults (as the server would read them). */
  env?: Record<string, string>;
  clock?: Clock;
  /** Connect to the real Redis at TEST_REDIS_URL. */
  redis?: boolean;
  db?: PrismaClient;
  /** Options of `createApp` (e.g. a webhook registry with test handlers). */
  app?: CreateAppOptions;
}

export interface TestApp {
  ctx: AppContext;
  app: Express;
  close(): Promise<void>;
}

/** A real app on the test database (and real Redis when asked), with a test clock if given. */
export function createTestApp(options: TestContextOptions = {}): TestApp {
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: process.env.LOG_LEVEL ?? "silent",
    DATABASE_URL: testDatabaseUrl,
    JOBS_ENABLED: "false",
    ...options.env,
  });
  const ownsDb = options.db === undefined;
  const db = options.db ?? createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
  const redis = options.redis ? new Redis(testRedisUrl, { maxRetriesPerRequest: 2 }) : null;
  const ctx: AppContext = {
    config,
    db,
    logger: createLogger(config.LOG_LEVEL),
    clock: options.clock ?? systemClock,
    metrics: createMetrics(),
    redis,
  };
  return {
    ctx,
    app: createApp(ctx, options.app),
    async close() {
      if (ownsDb) await db.$disconnect();
      if (redis) await redis.quit();
    },
  };
}

export { ManualClock };
