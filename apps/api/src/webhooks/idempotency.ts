import { DAY_MS } from "../lib/time";
import { inSpan } from "../lib/tracing";
import { ConflictError } from "@zigznote/shared";
import { hasSqlState, Prisma, type Db, type PrismaClient } from "@zigznote/database";

/**
 * Exactly-once effects for provider webhooks.
 *
 * A row in `processed_webhooks` (unique on provider + event id) means "this event's effects are
 * committed". `processWebhookOnce` inserts that row and runs the handler in ONE transaction:
 *
 * - the handler fails -> the transaction rolls back, the row disappears with the effects, and the
 *   provider's retry is processed as if it were the first delivery;
 * - two deliveries race -> the second one's `INSERT ... ON CONFLICT DO NOTHING` waits on the first
 *   one's uncommitted index entry (READ COMMITTED). When the first commits, the second inserts
 *   nothing and reports a duplicate; when the first rolls back, the second claims the event and
 *   runs the handler itself. Never both, never neither.
 * - the wait is bounded by `lock_timeout`: a duplicate that gives up answers 409
 *   `WEBHOOK_IN_PROGRESS` (nothing stored, the provider retries later).
 *
 * Handlers whose effect is one statement can go further: `processWebhookStatementOnce` puts the
 * claim and the effect in one statement (one round trip, same guarantees).
 *
 * Marking an event processed before (or outside the transaction of) its handler is the mistake
 * this module exists to avoid: a failure after the mark turns the provider's retry into a
 * "duplicate" and the event is lost.
 */

export interface WebhookClaim {
  provider: string;
  eventId: string;
  eventType: string;
}

export interface ProcessWebhookOnceOptions {
  /** Recorded as processed_at (the app's clock, so cleanup can be tested with a manual one). */
  now?: Date;
  /** Longest wait for a lock, in ms: a concurrent delivery of the same event, or the handler's. */
  lockTimeoutMs?: number;
  /** Longest the whole transaction may run, in ms. */
  timeoutMs?: number;
}

export type ProcessWebhookOnceResult<T> =
  { status: "processed"; result: T } | { status: "duplicate" };

/** Raised when another delivery of the same event holds the claim for longer than the lock timeout. */
export class WebhookInProgressError extends ConflictError {
  constructor(provider: string, eventId: string) {
    super("Another delivery of this event is being processed; retry later", {
      code: "WEBHOOK_IN_PROGRESS",
      details: { provider, eventId },
    });
  }
}

/**
 * Records the event as processed unless it already is. Atomic through the unique constraint:
 * of any number of concurrent callers exactly one gets true. Inside a transaction the record
 * commits or rolls back with it.
 */
export async function checkAndMarkProcessed(
  db: Db,
  provider: string,
  eventId: string,
  eventType: string,
  now: Date = new Date(),
): Promise<boolean> {
  const claim = { provider, eventId, eventType };
  try {
    return (await db.$executeRaw(claimStatement(claim, now))) === 1;
  } catch (error) {
    if (isLockTimeout(error)) throw new WebhookInProgressError(provider, eventId);
    throw error;
  }
}

/** Whether the event's effects are committed (read-only). */
export async function isProcessed(db: Db, provider: string, eventId: string): Promise<boolean> {
  const rows = await db.$queryRaw<unknown[]>`
    SELECT 1 FROM processed_webhooks WHERE provider = ${provider} AND event_id = ${eventId}`;
  return rows.length > 0;
}

/**
 * Deletes the records processed more than `days` days before `now`; returns how many. Providers
 * stop retrying after a few days (Stripe 3, Svix about 5), so keep `days` above that (the job's
 * WEBHOOK_RETENTION_DAYS cannot be set below 7).
 */
export async function cleanupOldWebhooks(
  db: Db,
  days: number,
  now: Date = new Date(),
  batchSize = 5_000,
): Promise<number> {
  if (!Number.isFinite(days) || days < 0)
    throw new RangeError("days must be a non-negative number");
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  // In bounded batches: a backlog of millions never becomes one long-running DELETE.
  let deleted = 0;
  for (;;) {
    const count = await db.$executeRaw`
      DELETE FROM processed_webhooks
       WHERE id IN (SELECT id FROM processed_webhooks WHERE processed_at < ${cutoff} LIMIT ${batchSize})`;
    deleted += count;
    if (count < batchSize) return deleted;
  }
}

/** PostgreSQL's lock_not_available (55P03), as pg raises it or the driver adapter wraps it. */
export function isLockTimeout(error: unknown): boolean {
  return hasSqlState(error, "55P03");
}

/**
 * The claim: records the event unless it already is, with this transaction's (or statement's)
 * lock_timeout set by the same statement, so a concurrent duplicate waits on the unique index for
 * at most that long. set_config runs when the row is produced, before the insert may have to wait.
 */
function claimStatement(claim: WebhookClaim, now: Date, lockTimeoutMs = 5_000): Prisma.Sql {
  const timeout = `${Math.max(1, Math.round(lockTimeoutMs))}ms`;
  return Prisma.sql`
    INSERT INTO processed_webhooks (provider, event_id, event_type, processed_at)
    SELECT ${claim.provider}, ${claim.eventId}, ${claim.eventType}, ${now}::timestamptz
    FROM (SELECT set_config('lock_timeout', ${timeout}, true)) AS settings
    ON CONFLICT (provider, event_id) DO NOTHING`;
}

/**
 * Claims the event and applies `effect` in ONE statement (autocommit): `effect` receives the SQL
 * condition "this delivery claimed the event" and must act only under it. Returns whether the
 * claim was this delivery's. Same guarantees as `processWebhookOnce` for single-statement
 * effects: a failing statement records nothing; a concurrent duplicate waits on the unique
 * index for the first delivery's outcome (up to the lock timeout, then WebhookInProgressError).
 */
export async function processWebhookStatementOnce(
  db: PrismaClient,
  claim: WebhookClaim,
  effect: (claimed: Prisma.Sql) => Prisma.Sql,
  options: Pick<ProcessWebhookOnceOptions, "now" | "lockTimeoutMs"> = {},
): Promise<"processed" | "duplicate"> {
  const now = options.now ?? new Date();
  const claimed = Prisma.sql`EXISTS (SELECT 1 FROM claim)`;
  try {
    // Data-modifying CTEs all run, once, on one snapshot; `effect` sees the claim's RETURNING rows.
    const rows = await db.$queryRaw<{ claimed: number }[]>`
      WITH claim AS (${claimStatement(claim, now, options.lockTimeoutMs)} RETURNING 1),
           effect AS (${effect(claimed)})
      SELECT count(*)::int AS claimed FROM claim`;
    return rows[0]?.claimed === 1 ? "processed" : "duplicate";
  } catch (error) {
    if (isLockTimeout(error)) throw new WebhookInProgressError(claim.provider, claim.eventId);
    throw error;
  }
}

/**
 * Claims the event and runs `handler` in the same transaction. Returns `processed` with the
 * handler's result, or `duplicate` when the event's effects were already committed (by an earlier
 * or a concurrent delivery). A handler error propagates and nothing is recorded.
 */
export async function processWebhookOnce<T>(
  db: PrismaClient,
  claim: WebhookClaim,
  handler: (tx: Prisma.TransactionClient) => Promise<T>,
  options: ProcessWebhookOnceOptions = {},
): Promise<ProcessWebhookOnceResult<T>> {
  const now = options.now ?? new Date();
  return db.$transaction(
    async (tx) => {
      let claimed: boolean;
      try {
        // The claim, with this transaction's lock_timeout set by the same statement (one round
        // trip): set_config runs when the row is produced, before the insert may have to wait.
        claimed = await inSpan("webhook.claim", {}, async (span) => {
          const inserted = await tx.$executeRaw(claimStatement(claim, now, options.lockTimeoutMs));
          span.setAttribute("zigznote.webhook.claimed", inserted === 1);
          return inserted === 1;
        });
      } catch (error) {
        if (isLockTimeout(error)) throw new WebhookInProgressError(claim.provider, claim.eventId);
        throw error;
      }
      if (!claimed) return { status: "duplicate" as const };
      const result = await handler(tx);
      return { status: "processed" as const, result };
    },
    {
      // PostgreSQL's default READ COMMITTED is what lets a waiting duplicate see the first
      // delivery's outcome. (Under a stricter default the duplicate would fail with a
      // serialization error instead: a retryable 5xx, still never a second application.)
      maxWait: options.timeoutMs ?? 15_000,
      timeout: options.timeoutMs ?? 15_000,
    },
  );
}
