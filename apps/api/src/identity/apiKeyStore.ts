import { executeStatement, queryRows, type ApiKey, type Db } from "@zigznote/database";

/**
 * The API key rows: created, listed, revoked, read for authentication and stamped when used. The
 * rules (hashing, scopes, expiry, lockout) live in `apiKeyService.ts` and `apiKeyAuth.ts`.
 */
export interface ApiKeyRow {
  organizationId: string;
  createdById: string | null;
  name: string;
  /** The public key id. */
  prefix: string;
  secretHash: string;
  scopes: string[];
  expiresAt: Date | null;
}

export function insertApiKey(db: Db, row: ApiKeyRow): Promise<ApiKey> {
  return db.apiKey.create({ data: row });
}

/** The organization's keys, newest first. */
export function findApiKeys(db: Db, organizationId: string): Promise<ApiKey[]> {
  return db.apiKey.findMany({
    where: { organizationId },
    orderBy: [{ createdAt: "desc" }, { id: "asc" }],
  });
}

export function findOrganizationApiKey(
  db: Db,
  key: { organizationId: string; id: string },
): Promise<ApiKey | null> {
  return db.apiKey.findFirst({ where: { id: key.id, organizationId: key.organizationId } });
}

/** Sets `revokedAt` unless the key is already revoked (the first revocation time stays). */
export async function markApiKeyRevoked(
  db: Db,
  key: { organizationId: string; id: string },
  at: Date,
): Promise<void> {
  await db.apiKey.updateMany({
    where: { id: key.id, organizationId: key.organizationId, revokedAt: null },
    data: { revokedAt: at },
  });
}

/** What authentication needs of a key row (small enough to cache). */
export interface StoredApiKey {
  id: string;
  organizationId: string;
  prefix: string;
  secretHash: string;
  scopes: string[];
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  isOrganizationDeleted: boolean;
  /** The organization's plan when the row was read: its request budget. */
  planSlug: string;
}

/** The key with this public id, or null (plain SQL: every cache miss of authentication). */
export async function findStoredApiKey(db: Db, keyId: string): Promise<StoredApiKey | null> {
  const rows = await queryRows<StoredApiKey>(
    db,
    `SELECT k.id, k.organization_id AS "organizationId", k.prefix, k.secret_hash AS "secretHash",
            k.scopes, k.last_used_at AS "lastUsedAt", k.expires_at AS "expiresAt",
            k.revoked_at AS "revokedAt", o.deleted_at IS NOT NULL AS "isOrganizationDeleted",
            o.plan_slug AS "planSlug"
       FROM api_keys k JOIN organizations o ON o.id = k.organization_id
      WHERE k.prefix = $1`,
    [keyId],
  );
  return rows[0] ?? null;
}

/**
 * Sets `lastUsedAt` to `at` unless it is already after `threshold`, so concurrent instances do
 * not write the same interval twice; whether this call wrote it.
 */
export async function markApiKeyUsed(
  db: Db,
  input: { id: string; at: Date; threshold: Date },
): Promise<boolean> {
  const count = await executeStatement(
    db,
    `UPDATE api_keys SET last_used_at = $2::timestamptz
      WHERE id = $1::uuid AND (last_used_at IS NULL OR last_used_at <= $3::timestamptz)`,
    [input.id, input.at, input.threshold],
  );
  return count > 0;
}
