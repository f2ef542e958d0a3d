import type { Db, PrismaClient } from "@zigznote/database";
import type { Redis } from "ioredis";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";

/** What identity (sign-in, API keys, lockout) is built from. */
export interface IdentityDeps {
  db: PrismaClient;
  config: Config;
  logger: Logger;
  clock: Clock;
  /** Shared lockout counters and revocation markers across instances; null: in memory. */
  redis: Redis | null;
}

/**
 * What a service that only reads and writes rows needs: the app's client, or the caller's
 * transaction (Clerk's webhook handlers run inside the event's).
 */
export interface DbDeps {
  db: Db;
}
