import type { Db } from "@zigznote/database";
import type { WriteAction, WriteGuard, WriteGuards } from "../http/auth";
import type { RouteDefinition } from "../http/route";
import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";
import type { RegisterWebhookHandlers } from "../webhooks";
import { assertCanWrite, createWriteGuards, guardWrite } from "./limits/access";
import { createAppBilling, type AppBilling, type AppBillingParts } from "./appBilling";
import { assertNoOpenDispute } from "./disputes/disputes";
import { warnExpiringCards } from "./dunning/expiringCards";
import { billingRoutes } from "./routes";
import { suspendExpiredGracePeriods } from "./dunning/paymentStanding";
import { registerStripeHandlers } from "./stripe/events";
import {
  CANCEL_SUBSCRIPTION_CALL,
  cancelSubscriptionCall,
  EXPIRE_CHECKOUT_SESSIONS_CALL,
  expireCheckoutSessionsCall,
  queueCheckoutSessionsExpiry,
  queueSubscriptionCancels,
  REFUND_SUBSCRIPTION_CALL,
  refundSubscriptionCall,
} from "./subscriptions/organizationDeletion";
import {
  checkPlanViolations,
  escalateExpiredStorageGrace,
  recheckRecordedViolations,
  warnStorageGraceEnding,
} from "./limits/violations";

/** What other features call into billing with (the composition root wires them). */
export interface BillingHooks {
  /** Decides a create in the create's own transaction (exact limits under concurrency). */
  guardWrite: WriteGuard;
  /** The routes' write guard (`write: <action>`): 402/403 when the organization may not. */
  assertCanWrite(organizationId: string, action: WriteAction): Promise<void>;
  /** The routes' guards of each write action, with the codes they answer. */
  writeGuards: WriteGuards;
  /** Freed storage may resolve a storage violation: re-checked where the rows go. */
  onStorageFreed: (db: Db, organizationId: string) => Promise<void>;
  /**
   * A recording was recorded (after its commit): stored bytes may now be over the plan's
   * limit (the storage grace starts), or under it again when a bigger recording was replaced.
   */
  onStorageStored: (db: Db, organizationId: string) => Promise<void>;
  /**
   * A meeting was deleted (after its commit): its recordings no longer count, so a storage
   * violation may be resolved now. Never throws: a failed check is logged, and the hourly
   * re-check of recorded violations records what it missed.
   */
  onMeetingDeleted: (organizationId: string) => Promise<void>;
  /**
   * In the transaction that records an organization's deletion: queues the cancellation of its
   * subscriptions and the expiry of its open Checkout Sessions at Stripe (made after the commit,
   * retried until done).
   */
  onOrganizationDeleted: (db: Db, organizationId: string) => Promise<void>;
}

export interface BillingModule {
  routes: RouteDefinition[];
  jobs: JobDefinition[];
  webhookHandlers: RegisterWebhookHandlers;
  hooks: BillingHooks;
  /** The service's and the Stripe handlers' dependencies, and the deployment's billing rules. */
  deps: AppBilling;
}

/**
 * Billing as one app uses it: the routes, Stripe's webhook handlers, the grace and violation
 * jobs, and the guards other features call.
 */
export function createBillingModule(parts: AppBillingParts): BillingModule {
  const { db, clock } = parts;
  const billing = createAppBilling(parts);
  const { settings } = billing;
  const { calls } = parts;
  const stripeCalls = { stripe: billing.deps.stripe, logger: parts.logger };
  calls?.register(CANCEL_SUBSCRIPTION_CALL, cancelSubscriptionCall(stripeCalls));
  calls?.register(EXPIRE_CHECKOUT_SESSIONS_CALL, expireCheckoutSessionsCall(stripeCalls));
  calls?.register(REFUND_SUBSCRIPTION_CALL, refundSubscriptionCall(stripeCalls));
  // The outbox delivers what a job queues after each commit; a run ends once that is done, so
  // its record (and a caller waiting for it) sees the notices sent.
  const noticesSent = () => parts.notices.idle();
  const assertCanWriteNow = async (organizationId: string, action: WriteAction) => {
    await assertCanWrite({ db }, { organizationId, action, now: clock.now() });
    // An open dispute restricts only where the deployment chose so (DISPUTE_READ_ONLY).
    if (settings.isDisputeReadOnly) await assertNoOpenDispute({ db }, { organizationId });
  };

  return {
    deps: billing,
    routes: billingRoutes(billing.deps),
    webhookHandlers: (registry) => registerStripeHandlers(registry, billing.eventDeps),
    hooks: {
      // An open dispute restricts only where the deployment chose so (DISPUTE_READ_ONLY).
      async guardWrite(tx, input) {
        await guardWrite(tx, { ...input, now: input.now ?? clock.now() });
        if (settings.isDisputeReadOnly) await assertNoOpenDispute({ db: tx }, input);
      },
      assertCanWrite: assertCanWriteNow,
      writeGuards: createWriteGuards(assertCanWriteNow),
      async onStorageFreed(tx, organizationId) {
        await checkPlanViolations({ db: tx, settings }, { organizationId, now: clock.now() });
      },
      async onStorageStored(client, organizationId) {
        await checkPlanViolations({ db: client, settings }, { organizationId, now: clock.now() });
      },
      async onMeetingDeleted(organizationId) {
        // The deletion is committed and answered whatever the check says: the customer's
        // meeting is gone either way.
        await checkPlanViolations({ db, settings }, { organizationId, now: clock.now() }).catch(
          (error: unknown) => {
            parts.logger.error(
              { err: error, organizationId },
              "plan violation re-check after a meeting deletion failed",
            );
          },
        );
      },
      async onOrganizationDeleted(tx, organizationId) {
        if (!calls) throw new Error("billing was built without a provider-call queue");
        await queueSubscriptionCancels({ db: tx, calls }, { organizationId });
        await queueCheckoutSessionsExpiry({ db: tx, calls }, { organizationId });
      },
    },
    jobs: [
      {
        name: "checkExpiredGracePeriods",
        schedule: "0 * * * *",
        leaseMs: 30 * MINUTE_MS,
        description: "Suspend past_due subscriptions whose payment grace period is over",
        async run({ now }) {
          const suspended = await suspendExpiredGracePeriods(
            { db, notices: parts.notices },
            { now },
          );
          await noticesSent();
          return { rowsAffected: suspended.length };
        },
      },
      {
        name: "checkStorageGracePeriods",
        schedule: "10 * * * *",
        leaseMs: 30 * MINUTE_MS,
        description:
          "Make storage violations read-only once their grace period is over; warn 24 h before",
        async run({ now }) {
          const escalated = await escalateExpiredStorageGrace({ db, settings }, { now });
          const warned = await warnStorageGraceEnding({ db, settings }, { now });
          await noticesSent();
          return {
            rowsAffected: escalated.length,
            summary: { escalated: escalated.length, warned: warned.length },
          };
        },
      },
      {
        name: "recheckPlanViolations",
        schedule: "5 0 * * *",
        leaseMs: 60 * MINUTE_MS,
        description: "Re-check recorded plan violations (a new month resolves meeting limits)",
        run: async ({ now }) => ({
          rowsAffected: await recheckRecordedViolations({ db, settings }, { now }),
        }),
      },
      {
        name: "warnExpiringCards",
        schedule: "15 8 * * *",
        leaseMs: 30 * MINUTE_MS,
        description:
          "E-mail admins 30 and 7 days before the card paying a renewing subscription expires",
        async run({ now }) {
          const result = await warnExpiringCards({ db, settings }, { now });
          await noticesSent();
          return { rowsAffected: result.queued, summary: { ...result } };
        },
      },
    ],
  };
}
