import { LRUCache } from "lru-cache";
import type { IdentityDeps } from "./deps";
import { findStoredApiKey, type StoredApiKey } from "./apiKeyStore";

/**
 * Key rows that authenticated recently, so that a busy key costs no database read per request.
 *
 * Revocation still takes effect on the next request:
 * - the instance that revokes drops its copy at once (alone, without Redis, that is exact);
 * - with Redis (several instances) revoking also sets a marker that lives longer than any
 *   cached copy, and every cache hit checks it (one Redis round trip, cheaper than the row).
 * A copy read while a revocation commits is discarded (`generation`), not cached.
 * Only known keys are cached: guessed ids must not fill it. Expiry is checked on every request
 * from the cached `expiresAt`; an organization deleted by webhook is noticed within the TTL.
 */
export class ApiKeyCache {
  private readonly entries: LRUCache<string, StoredApiKey> | null;
  private generation = 0;

  constructor(
    private readonly deps: Pick<IdentityDeps, "db" | "redis" | "config" | "logger">,
    maxEntries = 10_000,
  ) {
    const ttlSeconds = deps.config.API_KEY_CACHE_SECONDS;
    this.entries =
      ttlSeconds > 0 ? new LRUCache({ max: maxEntries, ttl: ttlSeconds * 1000 }) : null;
  }

  private markerKey(keyId: string): string {
    return `${this.deps.config.REDIS_KEY_PREFIX}:apikey-revoked:${keyId}`;
  }

  /** The stored key with this public id (cached when known), or null. */
  async find(keyId: string): Promise<StoredApiKey | null> {
    const cached = this.peek(keyId);
    if (cached && !(await this.isRevokedElsewhere(keyId))) return cached;
    return this.load(keyId);
  }

  /**
   * The cached copy of a key, without asking Redis whether another instance revoked it: only for
   * a caller that asks `isRevokedElsewhere` itself before trusting it (in the same round trip as
   * its other Redis work: apiKeyAuth.ts).
   */
  peek(keyId: string): StoredApiKey | undefined {
    return this.entries?.get(keyId);
  }

  /** Whether another instance revoked the key since this one cached it (false without Redis). */
  async isRevokedElsewhere(keyId: string): Promise<boolean> {
    return this.deps.redis !== null && (await this.deps.redis.exists(this.markerKey(keyId))) > 0;
  }

  /** Reads the key's row (the cached copy, if any, is dropped first) and caches what it read. */
  async load(keyId: string): Promise<StoredApiKey | null> {
    this.entries?.delete(keyId);
    const generation = this.generation;
    const stored = await findStoredApiKey(this.deps.db, keyId);
    if (stored && this.entries && generation === this.generation) this.entries.set(keyId, stored);
    return stored;
  }

  /** Remembers a use written to the database, so the next requests do not write it again. */
  noteUsed(keyId: string, at: Date): void {
    const cached = this.entries?.get(keyId);
    if (cached) cached.lastUsedAt = at;
  }

  /**
   * Call after the key's row was revoked: this instance drops its copy at once, and every other
   * instance is told through Redis (a marker that outlives any cached copy: each of their cache
   * hits checks it). The revocation stands whatever Redis answers (a leaked key must be
   * revocable during a Redis outage). When Redis cannot take the marker, it is tried again every
   * second until it is set or no copy cached before the revocation can remain
   * (API_KEY_CACHE_SECONDS); meanwhile an instance that cannot read Redis either reads the row
   * again, and sees the revocation. Resolves after the first try.
   */
  async revoked(keyId: string): Promise<void> {
    this.forget(keyId);
    const { redis } = this.deps;
    if (!redis || !this.entries) return;
    const ttlSeconds = this.deps.config.API_KEY_CACHE_SECONDS;
    const giveUpAt = Date.now() + ttlSeconds * 1000;
    const announce = async (): Promise<void> => {
      try {
        await redis.set(this.markerKey(keyId), "1", "EX", ttlSeconds + 60);
      } catch (error) {
        if (Date.now() >= giveUpAt) return;
        this.deps.logger.warn(
          { err: error, keyId },
          "an API key's revocation is not yet announced to the other instances (Redis did not take it): trying again every second",
        );
        setTimeout(() => void announce(), 1000).unref();
      }
    };
    await announce();
  }

  /** This instance's copy is dropped, and a read of the row meanwhile is not cached. */
  private forget(keyId: string): void {
    this.generation += 1;
    this.entries?.delete(keyId);
  }
}
