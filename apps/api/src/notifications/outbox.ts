import type { Db, Notification, PrismaClient } from "@zigznote/database";
import type { Logger } from "../lib/logger";

/**
 * Notification outbox. Notices are written by the transaction that causes them (a failed payment,
 * a plan violation), so they exist exactly when the change committed, and a `dedupeKey` (one per
 * cause and recipient) keeps a replayed cause from queueing the same notice twice. Delivery
 * happens afterwards, outside any transaction: a deliverer claims rows (SKIP LOCKED + a claim
 * deadline), sends them, and marks each one sent with a conditional update, so two deliverers
 * never both mark a row and a deliverer that dies mid-way leaves its rows to be retried.
 */

export interface AdminNotice {
  organizationId: string;
  type: string;
  payload: Record<string, unknown>;
  /** Identifies the cause; the recipient's id is appended so each admin gets one copy. */
  dedupeKey: string;
}

/**
 * Queues each notice for every admin of its organization, in one statement, in the caller's
 * transaction. Returns the number of rows queued (already-queued duplicates are skipped).
 */
export async function enqueueAdminNotices(db: Db, notices: AdminNotice[]): Promise<number> {
  if (notices.length === 0) return 0;
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

/** Where notices go (e-mail, chat, ...). Throwing means "not delivered, try again later". */
export interface NotificationTransport {
  send(notification: Notification): Promise<void>;
}

/** The default transport: writes each notice to the log. */
export function createLoggingTransport(logger: Logger): NotificationTransport {
  return {
    send(notification) {
      logger.info(
        {
          notificationId: notification.id,
          type: notification.type,
          organizationId: notification.organizationId,
          to: notification.recipientEmail ?? notification.recipientUserId,
          payload: notification.payload,
        },
        "notification",
      );
      return Promise.resolve();
    },
  };
}

export interface DeliverOptions {
  now: Date;
  batchSize?: number;
  /** How long a claim keeps other deliverers away (longer than one send can take). */
  claimMs?: number;
  /** After this many failed attempts a notice is marked failed and no longer retried. */
  maxAttempts?: number;
  logger?: Logger;
}

export interface DeliveryResult {
  sent: number;
  failed: number;
  retried: number;
}

/** Claims up to `batchSize` pending notices; the claim is committed before anything is sent. */
async function claimBatch(
  db: PrismaClient,
  now: Date,
  batchSize: number,
  claimMs: number,
): Promise<Notification[]> {
  const claimedUntil = new Date(now.getTime() + claimMs);
  const ids = await db.$queryRaw<{ id: string }[]>`
    UPDATE notification_outbox SET claimed_until = ${claimedUntil}, attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM notification_outbox
        WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ${now})
        ORDER BY created_at
        LIMIT ${batchSize}
        FOR UPDATE SKIP LOCKED)
    RETURNING id`;
  if (ids.length === 0) return [];
  return db.notification.findMany({
    where: { id: { in: ids.map((row) => row.id) } },
    orderBy: { createdAt: "asc" },
  });
}

/**
 * Sends pending notices until none is left (or only ones claimed by others). Safe to run in
 * several places at once: each notice is claimed by one deliverer and marked sent once.
 */
export async function deliverPendingNotifications(
  db: PrismaClient,
  transport: NotificationTransport,
  options: DeliverOptions,
): Promise<DeliveryResult> {
  const batchSize = options.batchSize ?? 50;
  const claimMs = options.claimMs ?? 60_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const result: DeliveryResult = { sent: 0, failed: 0, retried: 0 };
  for (;;) {
    const batch = await claimBatch(db, options.now, batchSize, claimMs);
    if (batch.length === 0) return result;
    for (const notification of batch) {
      try {
        await transport.send(notification);
        const marked = await db.$executeRaw`
          UPDATE notification_outbox SET status = 'sent', sent_at = ${options.now},
                 claimed_until = NULL, last_error = NULL
           WHERE id = ${notification.id}::uuid AND status = 'pending'`;
        result.sent += marked;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const giveUp = notification.attempts >= maxAttempts;
        options.logger?.warn(
          { err: error, notificationId: notification.id, attempts: notification.attempts },
          "notification delivery failed",
        );
        // Retry after the claim runs out (a natural back-off), or give up for good.
        await db.$executeRaw`
          UPDATE notification_outbox
             SET last_error = ${message.slice(0, 1000)},
                 status = CASE WHEN ${giveUp} THEN 'failed'::"NotificationStatus" ELSE status END
           WHERE id = ${notification.id}::uuid AND status = 'pending'`;
        if (giveUp) result.failed += 1;
        else result.retried += 1;
      }
    }
    if (batch.length < batchSize) return result;
  }
}
