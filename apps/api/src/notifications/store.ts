import type { Db, Notification } from "@zigznote/database";

/**
 * The notification outbox table: every query and conditional update of the feature, nothing
 * else. The rules (who is told, retries, when to give up) live in `outbox.ts`.
 */

export interface OutboxNotice {
  organizationId: string;
  type: string;
  payload: Record<string, unknown>;
  /** Identifies the cause; the recipient's id is appended so each admin gets one copy. */
  dedupeKey: string;
}

/**
 * Inserts each notice for every admin (not deleted) of its organization, in one statement,
 * with the recipient's id appended to its dedupe key; rows whose key exists are skipped.
 * Returns the number of rows inserted.
 */
export function insertAdminNotices(db: Db, notices: OutboxNotice[]): Promise<number> {
  const rows = JSON.stringify(
    notices.map((notice) => ({
      organization_id: notice.organizationId,
      type: notice.type,
      payload: notice.payload,
      dedupe_key: notice.dedupeKey,
    })),
  );
  return db.$executeRaw`
    INSERT INTO notification_outbox
      (organization_id, recipient_user_id, recipient_email, type, payload, dedupe_key)
    SELECT n.organization_id, u.id, u.email, n.type, n.payload, n.dedupe_key || ':' || u.id::text
      FROM jsonb_to_recordset(${rows}::jsonb)
           AS n(organization_id uuid, type text, payload jsonb, dedupe_key text)
      JOIN memberships m ON m.organization_id = n.organization_id AND m.role = 'admin'
      JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
    ON CONFLICT (dedupe_key) DO NOTHING`;
}

/**
 * Claims up to `limit` pending notices, oldest first, that no one holds (SKIP LOCKED, and a
 * claim deadline past `now`) until `claimedUntil`, counting the attempt; one statement. The
 * claimed rows, oldest first.
 */
export async function claimPendingNotices(
  db: Db,
  input: { now: Date; claimedUntil: Date; limit: number },
): Promise<Notification[]> {
  const ids = await db.$queryRaw<{ id: string }[]>`
    UPDATE notification_outbox SET claimed_until = ${input.claimedUntil}, attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM notification_outbox
        WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ${input.now})
        ORDER BY created_at
        LIMIT ${input.limit}
        FOR UPDATE SKIP LOCKED)
    RETURNING id`;
  if (ids.length === 0) return [];
  return db.notification.findMany({
    where: { id: { in: ids.map((row) => row.id) } },
    orderBy: { createdAt: "asc" },
  });
}

/** Marks a pending notice sent at `at`; returns 1, or 0 when it was no longer pending. */
export function markNoticeSent(db: Db, input: { id: string; at: Date }): Promise<number> {
  return db.$executeRaw`
    UPDATE notification_outbox SET status = 'sent', sent_at = ${input.at},
           claimed_until = NULL, last_error = NULL
     WHERE id = ${input.id}::uuid AND status = 'pending'`;
}

/**
 * Records a failed send of a pending notice: its error, and `failed` for good when `isGivenUp`
 * (else it stays pending, retried once its claim runs out).
 */
export async function markNoticeFailed(
  db: Db,
  input: { id: string; error: string; isGivenUp: boolean },
): Promise<void> {
  await db.$executeRaw`
    UPDATE notification_outbox
       SET last_error = ${input.error},
           status = CASE WHEN ${input.isGivenUp} THEN 'failed'::"NotificationStatus" ELSE status END
     WHERE id = ${input.id}::uuid AND status = 'pending'`;
}
