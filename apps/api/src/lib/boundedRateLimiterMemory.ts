import { LRUCache } from "lru-cache";
import {
  RateLimiterMemory,
  type IRateLimiterOptions,
  type RateLimiterRes,
} from "rate-limiter-flexible";

/**
 * RateLimiterMemory whose number of keys is capped: an LRU remembers which keys the limiter
 * holds and deletes the least recently counted one from it when full. Expired entries are
 * removed by the limiter's own timers; the LRU's copy of them is dropped by its TTL or eviction.
 */
export class BoundedRateLimiterMemory extends RateLimiterMemory {
  private readonly keys: LRUCache<string, true>;

  constructor(options: IRateLimiterOptions & { maxKeys: number }) {
    const { maxKeys, ...limiterOptions } = options;
    super(limiterOptions);
    const ttlSeconds = Math.max(limiterOptions.duration ?? 1, limiterOptions.blockDuration ?? 0);
    this.keys = new LRUCache<string, true>({
      max: maxKeys,
      ttl: ttlSeconds * 1000 + 1000,
      dispose: (_value, key, reason) => {
        // "delete" is our own delete() below, which already cleared the limiter's entry.
        if (reason === "evict" || reason === "expire") void super.delete(key);
      },
    });
  }

  /** How many keys the limiter tracks (bounded by maxKeys). */
  get size(): number {
    return this.keys.size;
  }

  /**
   * False when the limiter holds nothing for `key` (never counted, or expired or evicted since):
   * its `get` would answer null. The LRU outlives every limiter entry it names.
   */
  has(key: string): boolean {
    return this.keys.has(key);
  }

  override consume(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    this.keys.set(String(key), true);
    return super.consume(key, points, options);
  }

  override penalty(
    key: string | number,
    points?: number,
    options?: { [key: string]: unknown },
  ): Promise<RateLimiterRes> {
    this.keys.set(String(key), true);
    return super.penalty(key, points, options);
  }

  override block(key: string | number, secDuration: number): Promise<RateLimiterRes> {
    this.keys.set(String(key), true);
    return super.block(key, secDuration);
  }

  override set(key: string | number, points: number, secDuration: number): Promise<RateLimiterRes> {
    this.keys.set(String(key), true);
    return super.set(key, points, secDuration);
  }

  override delete(key: string | number): Promise<boolean> {
    this.keys.delete(String(key));
    return super.delete(key);
  }
}
