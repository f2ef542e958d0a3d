import type { Db, PrismaClient } from "@zigznote/database";
import { afterCommit } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import {
  createLoggingTransport,
  deliverPendingNotifications,
  enqueueAdminNotices,
  type AdminNotice,
  type DeliverDeps,
  type DeliverOptions,
  type DeliveryResult,
  type NotificationTransport,
  type ObsoleteCheck,
} from "./outbox";
import { insertOperatorNotices, OPERATOR_NOTICE_PREFIX, type OperatorRecipients } from "./store";

/**
 * The outbox as the app uses it: `enqueue` writes notices in the caller's transaction and
 * delivery follows the commit by itself (callers never remember to send), and the minute job
 * sends whatever was left pending.
 */
export interface Notices {
  transport: NotificationTransport;
  /**
   * Queues each notice for every admin of its organization in `db` (the caller's transaction,
   * or at once) and delivers after the commit. Returns the rows queued.
   */
  enqueue(db: Db, notices: AdminNotice[]): Promise<number>;
  /**
   * Queues each notice (about an organization) for zigznote's operators instead of the
   * organization's admins: the platform admins of PLATFORM_ADMIN_USER_IDS and
   * PLATFORM_ADMIN_EMAILS. Its type starts with `ops.` (`OPERATOR_NOTICE_PREFIX`): the
   * organization's own list of notices leaves these out. Returns the rows queued (0 when no
   * operator is known).
   */
  enqueueForOperators(db: Db, notices: AdminNotice[]): Promise<number>;
  /**
   * Sends the pending notices. Never rejects (failures are logged and the rows stay pending).
   * Calls that arrive while a run is in progress make it run once more instead of starting a
   * second one; other instances may run at the same time (rows are claimed).
   */
  deliver(): Promise<void>;
  /** One delivery run with its figures (the scheduled job). */
  deliverNow(now: Date): Promise<DeliveryResult>;
  /** Resolves when no delivery of this app is running (tests, shutdown). */
  idle(): Promise<void>;
}

export interface NoticesDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** Default: the logging transport. */
  transport?: NotificationTransport;
  /** Skips notices whose cause was undone before delivery (billing's check). */
  isObsolete?: ObsoleteCheck;
  /** Per-row outcomes (the `/metrics` counter). */
  onOutcome?: DeliverDeps["onOutcome"];
  /** Attempts, back-off and claim of delivery runs. */
  delivery?: Pick<DeliverOptions, "maxAttempts" | "retryBaseMs" | "retryMaxMs" | "claimMs">;
  /** Who `enqueueForOperators` writes to (default: nobody). */
  operators?: OperatorRecipients;
}

export function createNotices(deps: NoticesDeps): Notices {
  const { db, clock, logger } = deps;
  const transport = deps.transport ?? createLoggingTransport(logger);
  const deliverDeps: DeliverDeps = {
    db,
    transport,
    logger,
    isObsolete: deps.isObsolete,
    onOutcome: deps.onOutcome,
    clock,
  };
  const run = (now: Date) => deliverPendingNotifications(deliverDeps, { ...deps.delivery, now });
  let running: Promise<void> | null = null;
  let isRerunRequested = false;

  function deliver(): Promise<void> {
    if (running) {
      isRerunRequested = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRerunRequested = false;
          await run(clock.now());
        } while (isRerunRequested);
      } catch (error) {
        logger.error({ err: error }, "notification delivery run failed; notices stay pending");
      } finally {
        running = null;
      }
    })();
    return running;
  }

  return {
    transport,
    async enqueue(tx, notices) {
      const queued = await enqueueAdminNotices({ db: tx }, notices);
      if (queued > 0) afterCommit(deliver);
      return queued;
    },
    async enqueueForOperators(tx, notices) {
      const operators = deps.operators ?? { clerkUserIds: [], emails: [] };
      if (notices.length === 0) return 0;
      const misnamed = notices.find((notice) => !notice.type.startsWith(OPERATOR_NOTICE_PREFIX));
      if (misnamed) {
        throw new Error(
          `operators' notice types start with "${OPERATOR_NOTICE_PREFIX}": ${misnamed.type}`,
        );
      }
      const queued = await insertOperatorNotices(tx, notices, operators);
      if (queued > 0) afterCommit(deliver);
      return queued;
    },
    deliver,
    deliverNow: run,
    async idle() {
      while (running) await running;
    },
  };
}
