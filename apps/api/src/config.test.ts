import { ConfigError, loadConfig } from "./config";

describe("loadConfig", () => {
  it("applies the documented defaults to an empty environment", () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3001);
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.TRUST_PROXY).toBe(false);
    expect(config.JOBS_ENABLED).toBe(true);
    expect(config.JSON_BODY_LIMIT).toBe("1mb");
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("defaults Recall to its us-east-1 region with bounded retries, and rejects a bad URL", () => {
    const config = loadConfig({});
    expect(config.RECALL_API_BASE_URL).toBe("https://us-east-1.recall.ai");
    expect(config.RECALL_API_KEY).toBeUndefined();
    expect(config.RECALL_TIMEOUT_MS).toBe(10_000);
    expect(config.RECALL_BOT_NAME).toBe("zigznote");
    expect(() => loadConfig({ RECALL_API_BASE_URL: "not a url" })).toThrow(/RECALL_API_BASE_URL/);
  });

  it("treats empty strings as unset", () => {
    expect(loadConfig({ DATABASE_URL: "", REDIS_URL: " " }).DATABASE_URL).toBeUndefined();
  });

  it("parses TRUST_PROXY as Express understands it", () => {
    expect(loadConfig({ TRUST_PROXY: "true" }).TRUST_PROXY).toBe(true);
    expect(loadConfig({ TRUST_PROXY: "2" }).TRUST_PROXY).toBe(2);
    expect(loadConfig({ TRUST_PROXY: "loopback, 10.0.0.0/8" }).TRUST_PROXY).toEqual([
      "loopback",
      "10.0.0.0/8",
    ]);
  });

  it("names every bad variable in one readable error", () => {
    let caught: unknown;
    try {
      loadConfig({ PORT: "eighty", DATABASE_URL: "mysql://x", JOBS_ENABLED: "maybe" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as ConfigError).message;
    expect(message).toMatch(/^Invalid configuration:/);
    expect(message).toContain("PORT");
    expect(message).toContain("DATABASE_URL");
    expect(message).toContain("JOBS_ENABLED");
    expect((caught as ConfigError).issues).toHaveLength(3);
  });
});
