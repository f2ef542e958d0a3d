import path from "node:path";
import type { PrismaClient } from "@zigznote/database";
import type { Redis } from "ioredis";
import { createAppBilling, type AppBilling } from "./billing/appBilling";
import type { Config } from "./config";
import { systemClock, type Clock } from "./lib/clock";
import { createLogger, type Logger } from "./lib/logger";
import { createMetrics, type Metrics } from "./lib/metrics";
import { LocalDiskStorage, type StorageProvider } from "./services/storageService";

/**
 * What the app is built from. `server.ts` makes the production one; tests make their own
 * (test database, a manual clock, local provider servers) and can run several side by side.
 */
export interface AppContext {
  config: Config;
  db: PrismaClient;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Shared Redis when REDIS_URL is set; null means single-instance, in-memory fallbacks. */
  redis: Redis | null;
  /** Where recordings are kept (local disk under STORAGE_DIR by default). */
  storage: StorageProvider;
  /** Billing service, Stripe handler dependencies and notice deliverer (built from the rest). */
  billing: AppBilling;
}

/**
 * A context with the usual defaults: system clock, a logger at the configured level, a fresh
 * metrics registry, no Redis, local-disk storage under STORAGE_DIR, and billing from the config.
 */
export function buildContext(
  parts: Pick<AppContext, "config" | "db"> & Partial<Omit<AppContext, "config" | "db">>,
): AppContext {
  const logger = parts.logger ?? createLogger(parts.config.LOG_LEVEL);
  const clock = parts.clock ?? systemClock;
  return {
    logger,
    clock,
    metrics: parts.metrics ?? createMetrics(),
    redis: parts.redis ?? null,
    storage: parts.storage ?? new LocalDiskStorage(path.resolve(parts.config.STORAGE_DIR)),
    billing:
      parts.billing ?? createAppBilling({ config: parts.config, db: parts.db, clock, logger }),
    config: parts.config,
    db: parts.db,
  };
}
