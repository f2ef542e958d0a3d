import type { Db, Notification, PrismaClient } from "@zigznote/database";
import type { Logger } from "../lib/logger";
import * as store from "./store";

/**
 * Notification outbox. Notices are written by the transaction that causes them (a failed payment,
 * a plan violation), so they exist exactly when the change committed, and a `dedupeKey` (one per
 * cause and recipient) keeps a replayed cause from queueing the same notice twice. Delivery
 * happens afterwards, outside any transaction: a deliverer claims rows (SKIP LOCKED + a claim
 * deadline), sends them, and marks each one sent with a conditional update, so two deliverers
 * never both mark a row and a deliverer that dies mid-way leaves its rows to be retried.
 */

/** A notice for every admin of an organization. */
export type AdminNotice = store.OutboxNotice;

/**
 * Queues each notice for every admin of its organization, in one statement, in `deps.db` (the
 * caller's transaction). Returns the number of rows queued (already-queued duplicates are
 * skipped).
 */
export async function enqueueAdminNotices(
  deps: { db: Db },
  notices: AdminNotice[],
): Promise<number> {
  if (notices.length === 0) return 0;
  return store.insertAdminNotices(deps.db, notices);
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

/** Where delivery reads and marks notices, where it sends them, and where failures are logged. */
export interface DeliverDeps {
  db: PrismaClient;
  transport: NotificationTransport;
  logger?: Logger;
}

export interface DeliverOptions {
  now: Date;
  batchSize?: number;
  /** How long a claim keeps other deliverers away (longer than one send can take). */
  claimMs?: number;
  /** After this many failed attempts a notice is marked failed and no longer retried. */
  maxAttempts?: number;
}

export interface DeliveryResult {
  sent: number;
  failed: number;
  retried: number;
}

/**
 * Sends pending notices until none is left (or only ones claimed by others). Safe to run in
 * several places at once: each notice is claimed by one deliverer (the claim is committed
 * before anything is sent) and marked sent once.
 */
export async function deliverPendingNotifications(
  deps: DeliverDeps,
  options: DeliverOptions,
): Promise<DeliveryResult> {
  const { db, transport } = deps;
  const batchSize = options.batchSize ?? 50;
  const claimMs = options.claimMs ?? 60_000;
  const maxAttempts = options.maxAttempts ?? 5;
  const result: DeliveryResult = { sent: 0, failed: 0, retried: 0 };
  for (;;) {
    const batch = await store.claimPendingNotices(db, {
      now: options.now,
      claimedUntil: new Date(options.now.getTime() + claimMs),
      limit: batchSize,
    });
    if (batch.length === 0) return result;
    for (const notification of batch) {
      try {
        await transport.send(notification);
        result.sent += await store.markNoticeSent(db, { id: notification.id, at: options.now });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        const giveUp = notification.attempts >= maxAttempts;
        deps.logger?.warn(
          { err: error, notificationId: notification.id, attempts: notification.attempts },
          "notification delivery failed",
        );
        // Retry after the claim runs out (a natural back-off), or give up for good.
        await store.markNoticeFailed(db, {
          id: notification.id,
          error: message.slice(0, 1000),
          isGivenUp: giveUp,
        });
        if (giveUp) result.failed += 1;
        else result.retried += 1;
      }
    }
    if (batch.length < batchSize) return result;
  }
}
