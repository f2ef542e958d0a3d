import type { Db, Notification, PrismaClient } from "@zigznote/database";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import { redactEmails } from "../lib/spanSanitizer";
import { inSpan, markSpanFailed, type Span } from "../lib/tracing";
import { storableExcerpt } from "../lib/text";
import * as store from "./store";

/**
 * Notification outbox. Notices are written by the transaction that causes them (a failed payment,
 * a plan violation), so they exist exactly when the change committed, and a `dedupeKey` (one per
 * cause and recipient) keeps a replayed cause from queueing the same notice twice. Delivery
 * happens afterwards, outside any transaction: a deliverer claims rows (SKIP LOCKED + a claim
 * deadline), sends them, and marks each one sent with a conditional update, so two deliverers
 * never both mark a row and a deliverer that dies mid-way leaves its rows to be retried. Just
 * before sending a row the deliverer renews its claim on it (conditionally: still its own), so a
 * batch that outlasts the claim never sends a row another deliverer has taken over since.
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

/** A claimed outbox row with what its message needs besides the row. */
export type OutboxMessage = Notification & { organizationName: string };

/** Where notices go (e-mail, chat, ...). Throwing means "not delivered, try again later". */
export interface NotificationTransport {
  send(notice: OutboxMessage): Promise<void>;
}

/** A failure that retrying will not fix (a 5xx SMTP reply, no address): the row is failed. */
export class PermanentDeliveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentDeliveryError";
  }
}

/**
 * Says why a notice is no longer due (its cause was undone: paid before the dunning e-mail went
 * out), or null to send it. Wired by the composition root to the feature that caused it.
 */
export type ObsoleteCheck = (db: Db, notice: Notification) => Promise<string | null>;

/** What happened to one row in a delivery run (metrics). */
export type DeliveryOutcome = "sent" | "retried" | "failed" | "skipped";

/** The default transport: writes each notice to the log. */
export function createLoggingTransport(logger: Logger): NotificationTransport {
  return {
    send(notification: Notification) {
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
  /** Checked just before sending; a reason marks the row skipped instead. */
  isObsolete?: ObsoleteCheck;
  /** Called once per row and outcome (the `/metrics` counter). */
  onOutcome?: (type: string, outcome: DeliveryOutcome) => void;
  /**
   * Time as it passes during a run (claims and back-offs are set from it). Without it the whole
   * run happens at `options.now`.
   */
  clock?: Clock;
}

export interface DeliverOptions {
  now: Date;
  batchSize?: number;
  /** How long a claim keeps other deliverers away (longer than one send can take). */
  claimMs?: number;
  /** After this many failed attempts a notice is marked failed and no longer retried. */
  maxAttempts?: number;
  /** Back-off after the first temporary failure (ms); doubles with each attempt. */
  retryBaseMs?: number;
  /** Longest back-off between two attempts (ms). */
  retryMaxMs?: number;
}

export interface DeliveryResult {
  sent: number;
  failed: number;
  retried: number;
  skipped: number;
}

/**
 * A failed send as its log line shows it: the error's name, message and stack with every e-mail
 * address replaced by `[email]` (a relay's refusal quotes the recipient, and nodemailer lists the
 * refused recipients on the error), and the SMTP code, reply code and command that say why. The
 * row's `last_error` keeps the full answer for the organization's admins; logs never get it.
 */
function loggableError(error: unknown): Record<string, unknown> {
  const smtpFields = (value: unknown) => {
    const fields = (value ?? {}) as { code?: unknown; responseCode?: unknown; command?: unknown };
    return {
      ...(typeof fields.code === "string" ? { code: fields.code } : {}),
      ...(typeof fields.responseCode === "number" ? { responseCode: fields.responseCode } : {}),
      ...(typeof fields.command === "string" ? { command: redactEmails(fields.command) } : {}),
    };
  };
  if (!(error instanceof Error)) return { message: redactEmails(String(error)) };
  return {
    type: error.name,
    message: redactEmails(error.message),
    ...(error.stack ? { stack: redactEmails(error.stack) } : {}),
    // A PermanentDeliveryError wraps the SMTP error: its fields are the cause's.
    ...smtpFields(error.cause),
    ...smtpFields(error),
  };
}

/** The wait before attempt `attempts + 1`: base, 2 x base, 4 x base, ... capped. */
export function retryDelayMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempts - 1));
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
  const retryBaseMs = options.retryBaseMs ?? 60_000;
  const retryMaxMs = options.retryMaxMs ?? 60 * 60_000;
  const result: DeliveryResult = { sent: 0, failed: 0, retried: 0, skipped: 0 };
  const count = (notice: Notification, outcome: DeliveryOutcome) => {
    result[outcome] += 1;
    deps.onOutcome?.(notice.type, outcome);
  };
  // A run can last longer than a claim (a batch of slow sends): its "now" moves with the clock,
  // never before `options.now`, so the claims and back-offs it sets are not already past.
  const currentTime = (): Date => {
    const clockNow = deps.clock?.now();
    return clockNow && clockNow > options.now ? clockNow : options.now;
  };
  /**
   * Sends one claimed notice and marks it; the outcome, or null when another deliverer took it
   * over or marked it first.
   */
  const deliverOne = async (
    notice: OutboxMessage,
    batchClaim: store.NoticeClaim,
    span: Span,
  ): Promise<DeliveryOutcome | null> => {
    let claim = batchClaim;
    try {
      // The batch's claim was set when the batch was taken; sending the rows before this one may
      // have outlasted it, and another deliverer may have claimed this row since. Renewing the
      // claim (only if still ours) gives this send a full claim and tells us if the row is gone.
      const renewed = await store.renewNoticeClaim(db, {
        claim,
        until: new Date(currentTime().getTime() + claimMs),
      });
      if (!renewed) {
        deps.logger?.debug(
          { notificationId: notice.id, attempts: notice.attempts },
          "notification claim lost before sending (another deliverer took it over)",
        );
        return null;
      }
      claim = renewed;
      const obsolete = deps.isObsolete ? await deps.isObsolete(db, notice) : null;
      if (obsolete) {
        return (await store.markNoticeSkipped(db, { id: notice.id, reason: obsolete }))
          ? "skipped"
          : null;
      }
      await transport.send(notice);
      return (await store.markNoticeSent(db, { id: notice.id, at: currentTime() })) ? "sent" : null;
    } catch (error) {
      markSpanFailed(span, error);
      const message = error instanceof Error ? error.message : String(error);
      const isPermanent = error instanceof PermanentDeliveryError;
      const giveUp = isPermanent || notice.attempts >= maxAttempts;
      deps.logger?.warn(
        {
          err: loggableError(error),
          notificationId: notice.id,
          attempts: notice.attempts,
          isPermanent,
        },
        giveUp ? "notification delivery failed for good" : "notification delivery failed",
      );
      // A temporary failure is retried once its back-off (the claim, extended) runs out.
      const retryAt = new Date(
        currentTime().getTime() + retryDelayMs(notice.attempts, retryBaseMs, retryMaxMs),
      );
      const marked = await store.markNoticeFailed(db, {
        claim,
        error: storableExcerpt(message, 1000),
        isGivenUp: giveUp,
        retryAt,
      });
      // Not marked: another deliverer claimed the row meanwhile and its attempt decides.
      if (!marked) return null;
      return giveUp ? "failed" : "retried";
    }
  };
  for (;;) {
    const claimedAt = currentTime();
    const claimedUntil = new Date(claimedAt.getTime() + claimMs);
    const batch = await store.claimPendingNotices(db, {
      now: claimedAt,
      claimedUntil,
      limit: batchSize,
    });
    if (batch.length === 0) return result;
    for (const notice of batch) {
      // One span per notice (its id and type, never its recipient), the SMTP exchange below it.
      const attributes = {
        "zigznote.notice.id": notice.id,
        "zigznote.notice.type": notice.type,
        "zigznote.notice.attempts": notice.attempts,
        "zigznote.organization.id": notice.organizationId,
      };
      const outcome = await inSpan(
        `notice.deliver ${notice.type}`,
        { attributes },
        async (span) => {
          const claim = { id: notice.id, attempts: notice.attempts, claimedUntil };
          const delivered = await deliverOne(notice, claim, span);
          span.setAttribute("zigznote.notice.outcome", delivered ?? "unchanged");
          return delivered;
        },
      );
      if (outcome) count(notice, outcome);
    }
    if (batch.length < batchSize) return result;
  }
}
