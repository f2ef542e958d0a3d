import { ServiceUnavailableError } from "@zigznote/shared";
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
    private readonly deps: Pick<IdentityDeps, "db" | "redis" | "config">,
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
   * Call before revoking the key's row: tells every other instance (the Redis marker, living
   * longer than any cached copy) to read the row again on each use until their copy is gone. Set
   * before the row changes, so that a Redis that cannot take it refuses the revocation (503,
   * nothing written) instead of leaving other instances trusting a revoked key: a copy cached
   * between the marker and the change is read again too, as the marker outlives it.
   */
  async announceRevocation(keyId: string): Promise<void> {
    if (!this.deps.redis || !this.entries) return;
    const ttlSeconds = this.deps.config.API_KEY_CACHE_SECONDS;
    try {
      await this.deps.redis.set(this.markerKey(keyId), "1", "EX", ttlSeconds + 60);
    } catch (error) {
      throw new ServiceUnavailableError(
        "The revocation could not be announced to every instance (Redis did not answer); nothing was revoked, retry shortly",
        { retryAfterSeconds: 5, cause: error },
      );
    }
  }

  /** Call after the key's row changed (revoked): this instance drops its copy and reads it again. */
  forget(keyId: string): void {
    this.generation += 1;
    this.entries?.delete(keyId);
  }
}
