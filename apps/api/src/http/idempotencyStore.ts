import { executeStatement, queryRows, type SqlDb, type SqlStatement } from "@zigznote/database";

/**
 * The SQL of `idempotency_keys` (see idempotency.ts for the rules). Each change is one statement
 * guarded by what it expects to find, so concurrent requests and instances need no other lock:
 * the primary key (organization, key hash) lets one claim exist at a time.
 */

export interface IdempotencyKeyRef {
  /** The caller's organization; a platform admin's user id for a session without one. */
  organizationId: string;
  keyHash: Buffer;
}

export interface IdempotencyClaim extends IdempotencyKeyRef {
  fingerprint: Buffer;
  method: string;
  path: string;
  /** The request taking the claim. */
  ownerId: string;
  now: Date;
  lockedUntil: Date;
  expiresAt: Date;
}

export interface StoredIdempotencyKey {
  fingerprint: Buffer;
  method: string;
  path: string;
  lockedUntil: Date | null;
  responseStatus: number | null;
  response: Buffer | null;
  expiresAt: Date;
}

/** See `claimIdempotencyKey`. */
const CLAIM_SQL = `INSERT INTO idempotency_keys AS k (organization_id, key_hash, fingerprint, method, path,
                                        owner_id, locked_until, created_at, expires_at)
     VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid, $7::timestamptz, $8::timestamptz, $9::timestamptz)
     ON CONFLICT (organization_id, key_hash) DO UPDATE SET
       fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
       owner_id = EXCLUDED.owner_id, locked_until = EXCLUDED.locked_until,
       response_status = NULL, response = NULL,
       created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
     -- An expired row, or a claim abandoned by the same request (the migration's function).
     WHERE idempotency_key_is_takeable(k, EXCLUDED.fingerprint, EXCLUDED.created_at)
     RETURNING 1`;

/**
 * Claims the key for this request: a new key, an expired one (its row not yet deleted), or a
 * claim abandoned by the same request (its lease over: the instance that held it died and
 * stopped renewing it, `renewIdempotencyClaim`). True when this request holds the claim now.
 */
export async function claimIdempotencyKey(db: SqlDb, claim: IdempotencyClaim): Promise<boolean> {
  const rows = await queryRows(db, CLAIM_SQL, [
    claim.organizationId,
    claim.keyHash,
    claim.fingerprint,
    claim.method,
    claim.path,
    claim.ownerId,
    claim.lockedUntil,
    claim.now,
    claim.expiresAt,
  ]);
  return rows.length > 0;
}

/** What the procedures below raise when the key belongs to another request. */
const KEY_HELD_CODE = "ZIK01";
const KEY_HELD_MESSAGE = "idempotency key held by another request";

/**
 * A claim made inside the write's own transaction, for its BEGIN round trip
 * (`TransactionBracket.firstStatement`): the key's advisory lock, taken without waiting (a
 * concurrent request of the key holds it until its transaction ends, committed or not, and a dead
 * instance's is gone with its connection); then, in a snapshot taken after the lock, whether a row
 * of the key stands in the way (an answer, another request's claim). Either raises an error
 * (`isKeyHeldError`) that stops the transaction before its work. The claim's row is written at
 * COMMIT, answered (`answerInTransactionStatement`). A procedure of the migrations: PostgreSQL
 * keeps its plan, and a CALL returns no row.
 */
export function claimInTransactionStatement(claim: IdempotencyClaim): SqlStatement {
  return {
    text: "CALL idempotency_claim_in_transaction($1::uuid, $2, $3, $4)",
    values: [claim.organizationId, claim.keyHash, claim.fingerprint, claim.now],
  };
}

/** An answered row's columns, in the order both statements that write one take them. */
function answeredRowValues(input: IdempotencyClaim & { status: number; response: Buffer }) {
  return [
    input.organizationId,
    input.keyHash,
    input.fingerprint,
    input.method,
    input.path,
    input.status,
    input.response,
    input.now,
    input.expiresAt,
  ];
}

/**
 * The answer of a claim made in the write's transaction (`claimInTransactionStatement`), for
 * COMMIT's round trip (`TransactionBracket.lastStatement`): the key's row, answered. A row that
 * appeared since the claim (a request of another route, which claims by row) makes it raise an
 * error (`isKeyHeldError`), so that the write is not committed either.
 */
export function answerInTransactionStatement(
  input: IdempotencyClaim & { status: number; response: Buffer },
): SqlStatement {
  return {
    text: "CALL idempotency_answer_in_transaction($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)",
    values: answeredRowValues(input),
  };
}

/**
 * Whether `error` stopped a claim made in its transaction: the key belongs to another request
 * (running, answered, or claimed by a request of another route).
 */
export function isKeyHeldError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // pg's error carries the SQLSTATE; through Prisma (the embedded database) the message tells.
  return (
    (error as { code?: unknown }).code === KEY_HELD_CODE || error.message.includes(KEY_HELD_MESSAGE)
  );
}

/**
 * `answerIdempotencyKey` as one statement (for COMMIT's round trip,
 * `TransactionBracket.lastStatement`). It raises an error when the claim is no longer this
 * request's, so that the write it goes with is not committed either.
 */
export function answerStatement(
  input: IdempotencyKeyRef & { ownerId: string; status: number; response: Buffer },
): SqlStatement {
  return {
    text: `WITH answered AS (
      UPDATE idempotency_keys SET response_status = $1, response = $2, owner_id = NULL,
             locked_until = NULL
       WHERE organization_id = $3::uuid AND key_hash = $4 AND owner_id = $5::uuid
         AND response_status IS NULL
      RETURNING 1)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM answered) THEN TRUE
                -- An error at run time (a volatile operand: never folded when planning).
                ELSE ('idempotency claim taken over at ' || clock_timestamp())::boolean
           END AS answered`,
    values: [input.status, input.response, input.organizationId, input.keyHash, input.ownerId],
  };
}

/**
 * Stores an answer that no claim preceded (a deferred claim never made): the key's row, answered
 * at once. False when the key already has a row (another request claimed or answered it).
 */
export async function storeIdempotentAnswer(
  db: SqlDb,
  input: IdempotencyClaim & { status: number; response: Buffer },
): Promise<boolean> {
  const rows = await queryRows(
    db,
    `INSERT INTO idempotency_keys (organization_id, key_hash, fingerprint, method, path,
                                   response_status, response, created_at, expires_at)
     VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9::timestamptz)
     ON CONFLICT (organization_id, key_hash) DO NOTHING
     RETURNING 1`,
    answeredRowValues(input),
  );
  return rows.length > 0;
}

/** The key's row (claim or answer), or null. */
export async function findIdempotencyKey(
  db: SqlDb,
  ref: IdempotencyKeyRef,
): Promise<StoredIdempotencyKey | null> {
  const rows = await queryRows<StoredIdempotencyKey>(
    db,
    `SELECT fingerprint, method, path, locked_until AS "lockedUntil",
            response_status AS "responseStatus", response, expires_at AS "expiresAt"
       FROM idempotency_keys WHERE organization_id = $1::uuid AND key_hash = $2`,
    [ref.organizationId, ref.keyHash],
  );
  return rows[0] ?? null;
}

/**
 * Stores the answer of the request holding the claim (`db`: the transaction of the write's own
 * effect, where there is one). False when the claim is no longer this request's.
 */
export async function answerIdempotencyKey(
  db: SqlDb,
  input: IdempotencyKeyRef & { ownerId: string; status: number; response: Buffer },
): Promise<boolean> {
  const count = await executeStatement(
    db,
    `UPDATE idempotency_keys SET response_status = $4, response = $5,
                                 owner_id = NULL, locked_until = NULL
      WHERE organization_id = $1::uuid AND key_hash = $2 AND owner_id = $3::uuid
        AND response_status IS NULL`,
    [input.organizationId, input.keyHash, input.ownerId, input.status, input.response],
  );
  return count > 0;
}

/**
 * Extends the lease of the request's running claim to `lockedUntil` (its instance is alive).
 * False when the claim is no longer this request's (answered, released, or taken over after its
 * lease ran out): a claim another request holds is never extended.
 */
export async function renewIdempotencyClaim(
  db: SqlDb,
  input: IdempotencyKeyRef & { ownerId: string; lockedUntil: Date },
): Promise<boolean> {
  const count = await executeStatement(
    db,
    `UPDATE idempotency_keys SET locked_until = $4::timestamptz
      WHERE organization_id = $1::uuid AND key_hash = $2 AND owner_id = $3::uuid
        AND response_status IS NULL`,
    [input.organizationId, input.keyHash, input.ownerId, input.lockedUntil],
  );
  return count > 0;
}

/** Gives the claim up (the request was refused before its handler, or failed with a 5xx). */
export async function releaseIdempotencyKey(
  db: SqlDb,
  input: IdempotencyKeyRef & { ownerId: string },
): Promise<void> {
  await executeStatement(
    db,
    `DELETE FROM idempotency_keys
      WHERE organization_id = $1::uuid AND key_hash = $2 AND owner_id = $3::uuid
        AND response_status IS NULL`,
    [input.organizationId, input.keyHash, input.ownerId],
  );
}

/**
 * Deletes the keys expired at `now`, `batchSize` rows per statement (a backlog never becomes one
 * long DELETE); how many. Claims expire too: a claim lives far shorter than a key.
 */
export async function deleteExpiredIdempotencyKeys(
  db: SqlDb,
  input: { now: Date; batchSize: number },
): Promise<number> {
  let deleted = 0;
  for (;;) {
    const count = await executeStatement(
      db,
      `DELETE FROM idempotency_keys
        WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys
                                 WHERE expires_at <= $1::timestamptz LIMIT $2))`,
      [input.now, input.batchSize],
    );
    deleted += count;
    if (count < input.batchSize) return deleted;
  }
}
