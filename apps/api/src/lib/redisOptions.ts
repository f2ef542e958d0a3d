import type { RedisOptions } from "ioredis";

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
  // Commands issued in one turn of the event loop leave in one write: a cached API key's lockout
  // check, revocation marker and budget count (identity/apiKeyAuth.ts, http/rateLimit.ts).
  enableAutoPipelining: true,
} as const satisfies RedisOptions;
