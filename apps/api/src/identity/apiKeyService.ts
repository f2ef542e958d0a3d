import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import { crc32 } from "node:zlib";
import type { ApiKey } from "@zigznote/database";
import { NotFoundError, UnauthorizedError } from "@zigznote/shared";
import type { Scope } from "../http/scopes";
import type { ApiKeyCache } from "./apiKeyCache";
import type { DbDeps, IdentityDeps } from "./deps";
import * as apiKeyStore from "./apiKeyStore";
import type { StoredApiKey } from "./apiKeyStore";

/**
 * API keys, in the spirit of GitHub's tokens:
 *
 *   zn_live_<key id: 12 base62>_<secret: 32 base62><checksum: 6 base62>
 *
 * The product prefix makes a leaked key recognisable (secret scanners, log filters); the key id
 * is public (stored in `ApiKey.prefix`, shown in listings, used for lockout counters); the secret
 * carries ~190 bits and only its SHA-256 is stored; the CRC32 checksum over everything before it
 * lets a mistyped or made-up key be refused without touching the database.
 */

export const API_KEY_PREFIX = "zn_live_";
/** Any bearer token starting with this is treated as an API key, never as a session JWT. */
export const API_KEY_FAMILY = "zn_";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_ID_LENGTH = 12;
const SECRET_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const KEY_PATTERN = new RegExp(
  `^${API_KEY_PREFIX}([0-9A-Za-z]{${KEY_ID_LENGTH}})_([0-9A-Za-z]{${SECRET_LENGTH}})([0-9A-Za-z]{${CHECKSUM_LENGTH}})$`,
);
const KEY_ID_PATTERN = new RegExp(`^[0-9A-Za-z]{${KEY_ID_LENGTH}}$`);

/** Uniform base62 characters from the CSPRNG (rejection sampling keeps every character equally likely). */
function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 248 = 4 * 62: bytes above it would favour the first characters.
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function checksumOf(body: string): string {
  let value = crc32(body);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export interface ParsedApiKey {
  keyId: string;
  secret: string;
}

/** Splits a well-formed key into id and secret; null when the shape or the checksum is wrong. */
export function parseApiKey(token: string): ParsedApiKey | null {
  const match = KEY_PATTERN.exec(token);
  if (!match) return null;
  const [, keyId, secret, checksum] = match as unknown as [string, string, string, string];
  const expected = checksumOf(`${API_KEY_PREFIX}${keyId}_${secret}`);
  if (!timingSafeEqual(Buffer.from(checksum), Buffer.from(expected))) return null;
  return { keyId, secret };
}

/**
 * The key id a (possibly malformed) token claims, for lockout counting: a malformed attempt
 * still counts against the pair it aimed at, and against "-" when it names no usable id.
 */
export function claimedKeyId(token: string): string {
  const parsed = parseApiKey(token);
  if (parsed) return parsed.keyId;
  const candidate = token.slice(API_KEY_PREFIX.length, API_KEY_PREFIX.length + KEY_ID_LENGTH);
  return token.startsWith(API_KEY_PREFIX) && KEY_ID_PATTERN.test(candidate) ? candidate : "-";
}

/** Builds a key from its parts (the checksum is computed). */
export function formatApiKey(keyId: string, secret: string): string {
  const body = `${API_KEY_PREFIX}${keyId}_${secret}`;
  return `${body}${checksumOf(body)}`;
}

/** Hex SHA-256 of a secret: what the database keeps instead of it. */
export function hashSecret(secret: string): string {
  return hash("sha256", secret, "hex");
}

/** What clients see of a key: never the secret nor its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  createdById: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export function toApiKeyView(key: ApiKey): ApiKeyView {
  return {
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes as Scope[],
    createdById: key.createdById,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
  };
}

export interface CreateApiKeyInput {
  organizationId: string;
  createdById?: string | null;
  name: string;
  scopes: readonly Scope[];
  expiresAt?: Date | null;
}

/** Creates a key and returns it with the plain key, which exists nowhere else afterwards. */
export async function createApiKey(
  deps: DbDeps,
  input: CreateApiKeyInput,
): Promise<{ apiKey: ApiKeyView; plainKey: string }> {
  const keyId = randomBase62(KEY_ID_LENGTH);
  const secret = randomBase62(SECRET_LENGTH);
  // A key id collision (1 in 62^12 per pair) surfaces as P2002 -> 409; not worth a retry loop.
  const row = await apiKeyStore.insertApiKey(deps.db, {
    organizationId: input.organizationId,
    createdById: input.createdById ?? null,
    name: input.name,
    prefix: keyId,
    secretHash: hashSecret(secret),
    scopes: [...new Set(input.scopes)],
    expiresAt: input.expiresAt ?? null,
  });
  return { apiKey: toApiKeyView(row), plainKey: formatApiKey(keyId, secret) };
}

/** The organization's keys, newest first (revoked and expired ones included, marked as such). */
export async function listApiKeys(
  deps: DbDeps,
  input: { organizationId: string },
): Promise<ApiKeyView[]> {
  const rows = await apiKeyStore.findApiKeys(deps.db, input.organizationId);
  return rows.map(toApiKeyView);
}

/**
 * Revokes a key of the organization (404 for another organization's key: its existence is not
 * revealed) and drops the cached copies, so the next request with it fails on every instance
 * (`ApiKeyCache.revoked`: through Redis, tried again until Redis takes it). Revoking twice keeps
 * the first revocation time.
 */
export async function revokeApiKey(
  deps: Pick<IdentityDeps, "db" | "clock"> & { apiKeyCache: ApiKeyCache },
  input: { organizationId: string; id: string },
): Promise<ApiKeyView> {
  await apiKeyStore.markApiKeyRevoked(deps.db, input, deps.clock.now());
  const row = await apiKeyStore.findOrganizationApiKey(deps.db, input);
  if (!row) throw new NotFoundError("API key not found");
  await deps.apiKeyCache.revoked(row.prefix);
  return toApiKeyView(row);
}

// Compared against when the key id is unknown, so that an unknown id costs the same work as a
// wrong secret and response times do not tell them apart.
const DUMMY_HASH = hashSecret("zigznote-no-such-key");

const invalidApiKey = () => new UnauthorizedError("Invalid API key", { code: "INVALID_API_KEY" });

/**
 * Checks a parsed key against its stored row: why it is refused, or null when it holds.
 * INVALID_API_KEY for unknown or wrong-secret keys (indistinguishable on purpose, like malformed
 * ones), API_KEY_REVOKED / API_KEY_EXPIRED only when the secret was right (the holder learns why;
 * a guesser learns nothing).
 */
export function apiKeyRefusal(
  stored: StoredApiKey | null,
  parsed: ParsedApiKey,
  now: Date,
): UnauthorizedError | null {
  const presented = hash("sha256", parsed.secret, "buffer");
  const expected = Buffer.from(stored?.secretHash ?? DUMMY_HASH, "hex");
  const isMatch = expected.length === presented.length && timingSafeEqual(expected, presented);
  if (!stored || !isMatch) return invalidApiKey();
  if (stored.revokedAt) {
    return new UnauthorizedError("This API key was revoked", { code: "API_KEY_REVOKED" });
  }
  if (stored.expiresAt && stored.expiresAt.getTime() <= now.getTime()) {
    return new UnauthorizedError("This API key has expired", { code: "API_KEY_EXPIRED" });
  }
  if (stored.isOrganizationDeleted) {
    return new UnauthorizedError("The key's organization was deleted", {
      code: "ORGANIZATION_DELETED",
    });
  }
  return null;
}

/** The stored row of a parsed key that holds (`apiKeyRefusal`); throws its refusal otherwise. */
export function checkApiKey(
  stored: StoredApiKey | null,
  parsed: ParsedApiKey,
  now: Date,
): StoredApiKey {
  const refusal = apiKeyRefusal(stored, parsed, now);
  if (refusal !== null || stored === null) throw refusal ?? invalidApiKey();
  return stored;
}

/**
 * Records use at most once per API_KEY_LAST_USED_INTERVAL_SECONDS per key: the caller passes the
 * `lastUsedAt` it just read, so most requests write nothing, and the conditional update keeps
 * concurrent instances from writing the same interval twice. True when a use was due (then
 * `lastUsedAt` is now, written by this call or a concurrent one).
 */
export async function touchApiKey(
  deps: Pick<IdentityDeps, "db" | "config">,
  input: { key: Pick<StoredApiKey, "id" | "lastUsedAt">; now: Date },
): Promise<boolean> {
  const { key, now } = input;
  const threshold = new Date(now.getTime() - deps.config.API_KEY_LAST_USED_INTERVAL_SECONDS * 1000);
  if (key.lastUsedAt && key.lastUsedAt > threshold) return false;
  await apiKeyStore.markApiKeyUsed(deps.db, { id: key.id, at: now, threshold });
  return true;
}
