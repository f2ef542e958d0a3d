import type { Redis, RedisOptions } from "ioredis";
import type { Logger } from "./logger";

/**
 * How long a Redis command may go unanswered before it fails. What fails then has a fallback:
 * a request budget's count fails open (http/rateLimit.ts), the API key lockout reads this
 * instance's own counters (its insurance limiter), a revocation marker is replaced by a read of
 * the key's row (identity/apiKeyAuth.ts). Without it, a Redis that stops answering without
 * closing the connection would hold every request that asks it.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 500;

/** The API's Redis client (server.ts; the tests' apps use the same). */
export const redisClientOptions = {
  maxRetriesPerRequest: 2,
  // While disconnected a command fails at once (and falls back as above) instead of waiting.
  enableOfflineQueue: false,
  commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // A connection that has received nothing for as long after a command was written is dropped:
  // a Redis that stops answering is set aside after its first timeouts, instead of costing every
  // later request the command timeout. Until a new connection's ready check is answered,
  // commands fail at once (the offline queue is off) and take their fallbacks; reconnection
  // tries again every 2 s at most (ioredis's default strategy), so the first answer brings it
  // back.
  socketTimeout: REDIS_COMMAND_TIMEOUT_MS,
  // Commands issued in one turn of the event loop leave in one write: a cached API key's lockout
  // check, revocation marker and budget count (identity/apiKeyAuth.ts, http/rateLimit.ts).
  enableAutoPipelining: true,
} as const satisfies RedisOptions;

/**
 * Logs the API's Redis connection as an operator needs it: the first error of an outage (a
 * reconnecting client reports one every attempt, every 2 s), then that it is back.
 */
export function logRedisConnection(client: Redis, logger: Logger): void {
  let failing = false;
  client.on("error", (error: unknown) => {
    if (failing) return;
    failing = true;
    logger.warn(
      { err: error },
      "redis connection error: requests use their fallbacks until it answers again (repeats are not logged)",
    );
  });
  client.on("ready", () => {
    if (!failing) return;
    failing = false;
    logger.info("redis connection ready again");
  });
}
