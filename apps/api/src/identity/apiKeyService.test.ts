import { claimedKeyId, formatApiKey, hashSecret, parseApiKey } from "./apiKeyService";

describe("API key format", () => {
  const key = formatApiKey("AbCdEfGhIjKl", "s".repeat(32));

  it("round-trips a key through parseApiKey", () => {
    expect(key).toMatch(/^zn_live_AbCdEfGhIjKl_s{32}[0-9A-Za-z]{6}$/);
    expect(parseApiKey(key)).toEqual({ keyId: "AbCdEfGhIjKl", secret: "s".repeat(32) });
  });

  it("rejects a key whose checksum does not match (no database needed)", () => {
    const typo = key.slice(0, 25) + "t" + key.slice(26);
    expect(parseApiKey(typo)).toBeNull();
    expect(parseApiKey(key.slice(0, -1) + (key.endsWith("0") ? "1" : "0"))).toBeNull();
    expect(parseApiKey("zn_live_short")).toBeNull();
    expect(parseApiKey(`zn_test_${key.slice(8)}`)).toBeNull();
  });

  it("names the key id a malformed token aims at, or '-'", () => {
    expect(claimedKeyId(key)).toBe("AbCdEfGhIjKl");
    expect(claimedKeyId("zn_live_AbCdEfGhIjKl_broken")).toBe("AbCdEfGhIjKl");
    expect(claimedKeyId("zn_whatever")).toBe("-");
  });

  it("hashes secrets with SHA-256", () => {
    expect(hashSecret("abc")).toBe(
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    );
  });
});
