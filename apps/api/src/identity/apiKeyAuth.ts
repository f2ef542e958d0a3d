import { isAppError, TooManyRequestsError, UnauthorizedError } from "@zigznote/shared";
import {
  RateLimiterRedis,
  RateLimiterRes,
  type IRateLimiterOptions,
  type RateLimiterAbstract,
} from "rate-limiter-flexible";
import type { IdentityDeps } from "./deps";
import { scopesForRole, type Scope } from "../http/scopes";
import { ApiKeyCache } from "./apiKeyCache";
import {
  apiKeyRefusal,
  checkApiKey,
  claimedKeyId,
  parseApiKey,
  touchApiKey,
} from "./apiKeyService";
import type { StoredApiKey } from "./apiKeyStore";
import type { AuthContext } from "../http/auth";
import { clientAddressKey as lockoutAddress } from "../lib/clientAddress";
import { BoundedRateLimiterMemory } from "../lib/boundedRateLimiterMemory";

export { BoundedRateLimiterMemory, lockoutAddress };

/**
 * Brute-force protection of API keys.
 *
 * Every failed attempt (malformed, unknown, wrong secret, revoked, expired) counts against the
 * pair (client address, claimed key id) and against the client address alone. Reaching
 * API_KEY_MAX_FAILURES on a pair, or API_KEY_IP_MAX_FAILURES on an address (someone guessing
 * whole keys changes the key id on every try), blocks it for API_KEY_LOCKOUT_SECONDS; while
 * blocked every attempt, even with the right key, gets 429 whatever it holds. A success
 * clears its pair (not the address counter, or interleaving one valid key would reset it).
 *
 * The counters are rate-limiter-flexible limiters: in Redis when the app has one (every instance
 * shares one lockout; an in-memory limiter insures against Redis outages), otherwise in memory,
 * bounded by an LRU so that floods of distinct addresses cannot grow the process without limit.
 *
 * The check happens before the attempt and the failure is recorded after it, so concurrent
 * attempts in flight when the limit is reached are still evaluated (at most one round of the
 * client's concurrency). Counting before evaluating would close that gap but would also let a
 * legitimate client with many parallel requests lock itself out.
 */

interface FailureCounter {
  limiter: RateLimiterAbstract;
  /** Failures allowed before the block: the limiter's points. */
  allowed: number;
}

export interface ApiKeyLockout {
  /** Throws 429 when the pair or the address is blocked; tells whether the pair has failures. */
  assertNotLocked(address: string, keyId: string): Promise<{ pairHasFailures: boolean }>;
  recordFailure(address: string, keyId: string): Promise<void>;
  recordSuccess(address: string, keyId: string): Promise<void>;
  /** The in-memory limiters (the store itself, or Redis's insurance), for measurements. */
  memoryStores(): BoundedRateLimiterMemory[];
}

/** Told of each counted failure and each lockout it starts (the `/metrics` counters). */
export interface ApiKeyLockoutHooks {
  onFailure?(): void;
  onLockout?(kind: "pair" | "ip"): void;
}

/** The lockout counters of one app instance, from its config (and Redis when present). */
export function createApiKeyLockout(
  ctx: Pick<IdentityDeps, "config" | "redis">,
  hooks: ApiKeyLockoutHooks = {},
): ApiKeyLockout {
  const { config } = ctx;
  const memory: BoundedRateLimiterMemory[] = [];

  function createCounter(
    name: string,
    maxFailures: number,
  ): FailureCounter & { inMemory: BoundedRateLimiterMemory } {
    const options: IRateLimiterOptions = {
      keyPrefix: `${config.REDIS_KEY_PREFIX}:apikey-lockout:${name}`,
      // consume() rejects and blocks once consumed points exceed `points`: the Nth failure
      // blocks, so the (N+1)th attempt is the first one refused.
      points: maxFailures - 1,
      duration: config.API_KEY_FAILURE_WINDOW_SECONDS,
      blockDuration: config.API_KEY_LOCKOUT_SECONDS,
    };
    const inMemory = new BoundedRateLimiterMemory({
      ...options,
      maxKeys: config.API_KEY_LOCKOUT_MAX_ENTRIES,
    });
    memory.push(inMemory);
    const limiter = ctx.redis
      ? new RateLimiterRedis({ ...options, storeClient: ctx.redis, insuranceLimiter: inMemory })
      : inMemory;
    return { limiter, allowed: maxFailures - 1, inMemory };
  }

  const pairs = createCounter("pair", config.API_KEY_MAX_FAILURES);
  const addresses = createCounter("ip", config.API_KEY_IP_MAX_FAILURES);
  const pairKey = (address: string, keyId: string) => `${address}|${keyId}`;

  async function count(counter: FailureCounter, key: string, kind: "pair" | "ip"): Promise<void> {
    try {
      await counter.limiter.consume(key);
    } catch (rejection) {
      // A RateLimiterRes rejection only says the limit is now reached: the block is set.
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      // Only the attempt that reached the limit started the lockout (the count is atomic, in
      // Redis across instances); concurrent attempts past it are refused but start none.
      if (rejection.consumedPoints === counter.allowed + 1) hooks.onLockout?.(kind);
    }
  }

  return {
    async assertNotLocked(address, keyId) {
      // In memory alone (no Redis), a pair and an address with no failures recorded need no
      // lookup: the usual request of a good key.
      if (
        !ctx.redis &&
        !pairs.inMemory.has(pairKey(address, keyId)) &&
        !addresses.inMemory.has(address)
      ) {
        return { pairHasFailures: false };
      }
      const [pair, perAddress] = await Promise.all([
        pairs.limiter.get(pairKey(address, keyId)),
        addresses.limiter.get(address),
      ]);
      let retryAfterMs = 0;
      if (pair && pair.consumedPoints > pairs.allowed) retryAfterMs = pair.msBeforeNext;
      if (perAddress && perAddress.consumedPoints > addresses.allowed) {
        retryAfterMs = Math.max(retryAfterMs, perAddress.msBeforeNext);
      }
      if (retryAfterMs > 0) {
        throw new TooManyRequestsError("Too many failed API key attempts; try again later", {
          retryAfterSeconds: retryAfterMs / 1000,
        });
      }
      return { pairHasFailures: pair !== null && pair.consumedPoints > 0 };
    },
    async recordFailure(address, keyId) {
      hooks.onFailure?.();
      await Promise.all([
        count(pairs, pairKey(address, keyId), "pair"),
        count(addresses, address, "ip"),
      ]);
    },
    async recordSuccess(address, keyId) {
      await pairs.limiter.delete(pairKey(address, keyId));
    },
    memoryStores: () => memory,
  };
}

/**
 * Authenticates a bearer token that claims to be an API key, under the lockout. Returns the
 * caller's AuthContext or throws 401 (bad key) / 429 (locked out).
 *
 * A key this instance verified recently (its cache) and presented with its secret names its
 * caller before any round trip: `onCallerKnown` hears of it at once (the request budget starts
 * its count there, http/rateLimit.ts), and the lockout's check and the question whether another
 * instance revoked the key go to Redis at the same moment, so that a busy key's request waits
 * for one round trip, not three. Nothing is decided before every answer is in: a locked pair or
 * address is refused whatever the key holds (the budget gives its count back), and a key revoked
 * elsewhere, or one whose marker Redis could not tell, is read again from the database.
 */
export function createApiKeyAuthenticator(
  ctx: IdentityDeps,
  options: { lockout?: ApiKeyLockout; apiKeyCache?: ApiKeyCache } = {},
): (
  token: string,
  clientIp: string | undefined,
  onCallerKnown?: (caller: AuthContext) => void,
) => Promise<AuthContext> {
  const lockout = options.lockout ?? createApiKeyLockout(ctx);
  const cache = options.apiKeyCache ?? new ApiKeyCache(ctx);
  return async (token, clientIp, onCallerKnown) => {
    const address = lockoutAddress(clientIp);
    // Parsed once: the checksum and the id serve both the lockout and the check.
    const parsed = parseApiKey(token);
    const keyId = parsed?.keyId ?? claimedKeyId(token);
    const now = ctx.clock.now();
    const cached = parsed ? cache.peek(parsed.keyId) : undefined;
    const known = cached && parsed && apiKeyRefusal(cached, parsed, now) === null ? cached : null;
    const knownCaller = known ? callerOf(known) : null;
    if (knownCaller) onCallerKnown?.(knownCaller);
    const [{ pairHasFailures }, isRevokedElsewhere] = await Promise.all([
      lockout.assertNotLocked(address, keyId),
      known ? cache.isRevokedElsewhere(keyId).catch(() => true) : false,
    ]);
    let key: StoredApiKey;
    try {
      if (!parsed) throw new UnauthorizedError("Invalid API key", { code: "INVALID_API_KEY" });
      key =
        known && !isRevokedElsewhere
          ? known
          : checkApiKey(await (known ? cache.load(keyId) : cache.find(keyId)), parsed, now);
    } catch (error) {
      if (isAppError(error) && error.status === 401) {
        await lockout.recordFailure(address, keyId);
        ctx.logger.info({ keyId, address, reason: error.code }, "API key authentication failed");
      }
      throw error;
    }
    if (pairHasFailures) await lockout.recordSuccess(address, keyId);
    if (await touchApiKey(ctx, { key, now })) cache.noteUsed(key.prefix, now);
    return key === known && knownCaller ? knownCaller : callerOf(key);
  };
}

function callerOf(key: StoredApiKey): AuthContext {
  return {
    kind: "apiKey",
    organizationId: key.organizationId,
    userId: null,
    apiKeyId: key.id,
    role: null,
    scopes: Object.freeze(key.scopes.filter(isKnownScope)),
    planSlug: key.planSlug,
  };
}

const KNOWN_SCOPES = new Set<string>(scopesForRole("admin"));
function isKnownScope(scope: string): scope is Scope {
  return KNOWN_SCOPES.has(scope);
}
