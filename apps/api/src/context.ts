import type { PrismaClient } from "@zigznote/database";
import type { Redis } from "ioredis";
import type { Config } from "./config";
import type { Clock } from "./lib/clock";
import type { Logger } from "./lib/logger";
import type { Metrics } from "./lib/metrics";
import type { StorageProvider } from "./services/storageService";

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
}
