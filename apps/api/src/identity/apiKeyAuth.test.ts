import { BoundedRateLimiterMemory, lockoutAddress } from "./apiKeyAuth";

describe("lockoutAddress", () => {
  it("keeps IPv4 and unwraps IPv4-mapped IPv6", () => {
    expect(lockoutAddress("203.0.113.9")).toBe("203.0.113.9");
    expect(lockoutAddress("::ffff:203.0.113.9")).toBe("203.0.113.9");
  });

  it("groups IPv6 addresses by their /64", () => {
    expect(lockoutAddress("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(lockoutAddress("2001:0db8:0001:0002:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(lockoutAddress("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(lockoutAddress("::1")).toBe("0:0:0:0::/64");
  });

  it("counts an address forwarded with its port (Azure's X-Forwarded-For) as the address", () => {
    expect(lockoutAddress("203.0.113.9:51234")).toBe("203.0.113.9");
    expect(lockoutAddress("[2001:db8:1:2:aaaa::1]:51234")).toBe("2001:db8:1:2::/64");
    expect(lockoutAddress("[::ffff:203.0.113.9]:443")).toBe("203.0.113.9");
  });

  it("has a value without an address", () => {
    expect(lockoutAddress(undefined)).toBe("unknown");
  });
});

describe("BoundedRateLimiterMemory", () => {
  it("never holds more keys than maxKeys and forgets the least recently counted", async () => {
    const limiter = new BoundedRateLimiterMemory({ points: 1, duration: 60, maxKeys: 100 });
    for (let i = 0; i < 1_000; i++) await limiter.consume(`10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    expect(await limiter.get("10.0.0.0")).toBeNull();
    expect((await limiter.get("10.0.3.231"))?.consumedPoints).toBe(1);
    // The limiter's own store was trimmed too, not only the LRU's view of it.
    let held = 0;
    for (let i = 0; i < 1_000; i++) if (await limiter.get(`10.0.${i >> 8}.${i & 255}`)) held++;
    expect(held).toBe(100);
  });

  it("blocks a key once its points are exceeded", async () => {
    const limiter = new BoundedRateLimiterMemory({
      points: 1,
      duration: 60,
      blockDuration: 900,
      maxKeys: 10,
    });
    await limiter.consume("k");
    await expect(limiter.consume("k")).rejects.toMatchObject({ consumedPoints: 2 });
    const res = await limiter.get("k");
    expect(res?.msBeforeNext).toBeGreaterThan(899_000);
  });
});
