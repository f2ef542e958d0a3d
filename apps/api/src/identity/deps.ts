import type { PrismaClient } from "@zigznote/database";
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
