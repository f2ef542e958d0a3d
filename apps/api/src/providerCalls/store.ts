import type { Db, ProviderCall } from "@zigznote/database";

/** The SQL of the provider-call queue (`provider_calls`). */

export interface ProviderCallRow {
  organizationId: string;
  kind: string;
  target: string;
  reason: string;
}

/**
 * Queues each call, due at `now`, unless one of the same kind and target is already queued,
 * running or done (a call that gave up is queued again with all its attempts). With
 * `isDueNow`, one already queued and waiting for its next attempt is made due at `now` too
 * (its attempts kept). Returns the ids of the rows queued or made due by this statement.
 */
export async function insertProviderCalls(
  db: Db,
  input: { calls: ProviderCallRow[]; now: Date; isDueNow?: boolean },
): Promise<string[]> {
  const isDueNow = input.isDueNow === true;
  if (input.calls.length === 0) return [];
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO provider_calls
      (organization_id, kind, target, reason, next_attempt_at, created_at, updated_at)
    SELECT c.organization_id, c.kind, c.target, c.reason, ${input.now}, ${input.now}, ${input.now}
      FROM unnest(${input.calls.map((call) => call.organizationId)}::uuid[],
                  ${input.calls.map((call) => call.kind)}::text[],
                  ${input.calls.map((call) => call.target)}::text[],
                  ${input.calls.map((call) => call.reason)}::text[])
           AS c(organization_id, kind, target, reason)
     ORDER BY c.kind, c.target
    ON CONFLICT (kind, target) DO UPDATE
      SET status = 'pending',
          attempts = CASE WHEN provider_calls.status = 'failed' THEN 0
                          ELSE provider_calls.attempts END,
          next_attempt_at = EXCLUDED.next_attempt_at,
          last_error = CASE WHEN provider_calls.status = 'failed' THEN NULL
                            ELSE provider_calls.last_error END,
          updated_at = EXCLUDED.updated_at
      WHERE provider_calls.status = 'failed'
         OR (${isDueNow}::boolean AND provider_calls.status = 'pending'
             AND provider_calls.next_attempt_at > EXCLUDED.next_attempt_at)
    RETURNING id`;
  return rows.map((row) => row.id);
}

/**
 * Claims the call with one conditional UPDATE (one worker wins): a pending call that is due, or
 * one whose claim ran out (its worker died). The claimed row, or null.
 */
export async function claimProviderCall(
  db: Db,
  input: { id: string; now: Date; claimedUntil: Date },
): Promise<ProviderCall | null> {
  const claimed = await db.$queryRaw<{ id: string }[]>`
    UPDATE provider_calls
       SET status = 'in_progress', attempts = attempts + 1, claimed_until = ${input.claimedUntil},
           updated_at = ${input.now}
     WHERE id = ${input.id}::uuid
       AND ((status = 'pending' AND next_attempt_at <= ${input.now})
            OR (status = 'in_progress' AND claimed_until < ${input.now}))
     RETURNING id`;
  return claimed.length > 0 ? db.providerCall.findUnique({ where: { id: input.id } }) : null;
}

/** Marks the call done, only while the claim that made `attempts` still holds it. */
export async function markProviderCallDone(
  db: Db,
  input: { id: string; attempts: number; result: string; now: Date },
): Promise<boolean> {
  const { count } = await db.providerCall.updateMany({
    where: { id: input.id, status: "in_progress", attempts: input.attempts },
    data: {
      status: "done",
      result: input.result,
      lastError: null,
      claimedUntil: null,
      doneAt: input.now,
    },
  });
  return count === 1;
}

/**
 * Records a failed attempt (only while the claim that made `attempts` still holds the call):
 * pending again from `nextAttemptAt`, or failed for good when `isExhausted`.
 */
export async function markProviderCallAttemptFailed(
  db: Db,
  input: {
    id: string;
    attempts: number;
    isExhausted: boolean;
    lastError: string;
    nextAttemptAt: Date;
  },
): Promise<boolean> {
  const { count } = await db.providerCall.updateMany({
    where: { id: input.id, status: "in_progress", attempts: input.attempts },
    data: {
      status: input.isExhausted ? "failed" : "pending",
      lastError: input.lastError,
      nextAttemptAt: input.nextAttemptAt,
      claimedUntil: null,
    },
  });
  return count === 1;
}

/** Calls due now: pending and due, or claimed by a worker whose claim ran out. Oldest first. */
export async function findDueProviderCallIds(
  db: Db,
  input: { now: Date; limit: number },
): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    (SELECT id, next_attempt_at FROM provider_calls
      WHERE status = 'pending' AND next_attempt_at <= ${input.now}
      ORDER BY next_attempt_at LIMIT ${input.limit})
    UNION ALL
    (SELECT id, next_attempt_at FROM provider_calls
      WHERE status = 'in_progress' AND claimed_until < ${input.now}
      ORDER BY next_attempt_at LIMIT ${input.limit})
    ORDER BY next_attempt_at LIMIT ${input.limit}`;
  return rows.map((row) => row.id);
}

/** The reason the call of `kind` on `target` was queued for, or null when none was queued. */
export async function findProviderCallReason(
  db: Db,
  input: { kind: string; target: string },
): Promise<string | null> {
  const row = await db.providerCall.findUnique({
    where: { kind_target: { kind: input.kind, target: input.target } },
    select: { reason: true },
  });
  return row?.reason ?? null;
}
