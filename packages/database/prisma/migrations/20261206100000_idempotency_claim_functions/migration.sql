-- An Idempotency-Key claimed inside the write's own transaction (apps/api/src/http/idempotency.ts):
-- its claim at BEGIN and its answer at COMMIT are procedures, because PL/pgSQL keeps the plans of
-- its statements per connection where a literal statement is parsed and planned on every request,
-- and a CALL returns no row for the client to describe. Either raises ZIK01 when the key belongs
-- to another request: the transaction stops, and the request is answered as a repeat.
-- The migration runner (@prisma/adapter-pg's executeScript) splits scripts at every semicolon,
-- quoted or not, so the bodies spell theirs as the escape \003B.

-- Whether a row of a key stands aside for a new request of it: the row has expired (not yet
-- deleted), or it is a claim abandoned by the same request (its lease over: the instance that held
-- it died).
CREATE FUNCTION "idempotency_key_is_takeable"(k "idempotency_keys", p_fingerprint BYTEA, p_now TIMESTAMPTZ)
RETURNS BOOLEAN LANGUAGE sql STABLE AS
'SELECT coalesce(k.expires_at <= p_now OR (k.response_status IS NULL AND k.locked_until <= p_now AND k.fingerprint = p_fingerprint), false)';

-- The claim, first in the write's transaction: the key's transaction-scoped advisory lock (named
-- by the first 64 bits of its hash), taken without waiting (a concurrent request of the key holds
-- it), then, in a snapshot taken after it, whether a row of the key stands in the way (an answer,
-- or another request's claim).
-- Its lookup's plan is kept for the connection's life: without enable_seqscan off, one made while
-- the table was empty (a new database, or no ANALYZE since: autovacuum off) would scan the whole
-- table on every later request.
CREATE PROCEDURE "idempotency_claim_in_transaction"(
    p_organization_id UUID, p_key_hash BYTEA, p_fingerprint BYTEA, p_now TIMESTAMPTZ)
LANGUAGE plpgsql SET enable_seqscan = off AS
U&'BEGIN
  IF NOT pg_try_advisory_xact_lock((''x'' || encode(substring(p_key_hash FROM 1 FOR 8), ''hex''))::bit(64)::bigint) THEN
    RAISE EXCEPTION ''idempotency key held by another request: in use'' USING ERRCODE = ''ZIK01''\003B
  END IF\003B
  PERFORM 1 FROM "idempotency_keys" k
   WHERE k.organization_id = p_organization_id AND k.key_hash = p_key_hash
     AND NOT "idempotency_key_is_takeable"(k, p_fingerprint, p_now)\003B
  IF FOUND THEN
    RAISE EXCEPTION ''idempotency key held by another request: answered or claimed'' USING ERRCODE = ''ZIK01''\003B
  END IF\003B
END';

-- The answer, last in the write's transaction: the key's row, answered. A row that appeared since
-- the claim (a request of another route, which claims by row) raises ZIK01, so that the write is
-- not committed either.
CREATE PROCEDURE "idempotency_answer_in_transaction"(
    p_organization_id UUID, p_key_hash BYTEA, p_fingerprint BYTEA, p_method TEXT, p_path TEXT,
    p_status INTEGER, p_response BYTEA, p_now TIMESTAMPTZ, p_expires_at TIMESTAMPTZ)
LANGUAGE plpgsql AS
U&'BEGIN
  INSERT INTO "idempotency_keys" AS k (organization_id, key_hash, fingerprint, method, path,
                                       response_status, response, created_at, expires_at)
  VALUES (p_organization_id, p_key_hash, p_fingerprint, p_method, p_path, p_status, p_response,
          p_now, p_expires_at)
  ON CONFLICT (organization_id, key_hash) DO UPDATE SET
    fingerprint = EXCLUDED.fingerprint, method = EXCLUDED.method, path = EXCLUDED.path,
    owner_id = NULL, locked_until = NULL, response_status = EXCLUDED.response_status,
    response = EXCLUDED.response, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
  WHERE "idempotency_key_is_takeable"(k, EXCLUDED.fingerprint, EXCLUDED.created_at)\003B
  IF NOT FOUND THEN
    RAISE EXCEPTION ''idempotency key held by another request: answered since the claim'' USING ERRCODE = ''ZIK01''\003B
  END IF\003B
END';

-- Keys live IDEMPOTENCY_KEY_TTL_HOURS and a job deletes them (organizations are never deleted
-- outright by the API). The foreign key cost every keyed write a lookup of its organization's row
-- and a lock on it, which the write guard holds FOR UPDATE: a claim waited for any create of its
-- organization to commit.
ALTER TABLE "idempotency_keys" DROP CONSTRAINT "idempotency_keys_organization_id_fkey";
