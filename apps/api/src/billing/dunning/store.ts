import { Prisma, type Db, type SubscriptionStatus } from "@zigznote/database";
import { DELINQUENT_STATUSES, statusInSql } from "../subscriptions/statuses";

/**
 * The payment standing columns of `subscriptions` (see paymentStanding.ts): read under the
 * subscription's row lock, stored as derived, and the hourly suspension of expired graces.
 */

/** A subscription's payment standing columns (see paymentStanding.ts). */
export interface StandingRow {
  id: string;
  organization_id: string;
  status: SubscriptionStatus;
  last_payment_succeeded_event_at: Date | null;
  outstanding_failures_at: Date[] | null;
  outstanding_past_due_at: Date[] | null;
  outstanding_failure_invoice_ids: string[] | null;
  outstanding_past_due_invoice_ids: string[] | null;
  voided_invoice_ids: string[] | null;
  grace_ends_at: Date | null;
  payment_failed_at: Date | null;
  payment_retry_count: number;
}

/** Reads the subscription's standing under its row lock (FOR UPDATE), or null. */
export async function lockStanding(
  db: Db,
  input: { stripeSubscriptionId: string },
): Promise<StandingRow | null> {
  const rows = await db.$queryRaw<StandingRow[]>`
    SELECT id, organization_id, status::text AS status, last_payment_succeeded_event_at,
           outstanding_failures_at, outstanding_past_due_at, outstanding_failure_invoice_ids,
           outstanding_past_due_invoice_ids, voided_invoice_ids, grace_ends_at, payment_failed_at,
           payment_retry_count
      FROM subscriptions WHERE stripe_subscription_id = ${input.stripeSubscriptionId} FOR UPDATE`;
  return rows[0] ?? null;
}

export interface StandingUpdate {
  status: SubscriptionStatus;
  lastPaymentSucceededEventAt: Date | null;
  outstandingFailuresAt: Date[];
  outstandingPastDueAt: Date[];
  outstandingFailureInvoiceIds: string[];
  outstandingPastDueInvoiceIds: string[];
  voidedInvoiceIds: string[];
  graceEndsAt: Date | null;
  paymentFailedAt: Date | null;
  paymentRetryCount: number;
}

/** Stores a standing derived under `lockStanding`'s lock. */
export async function updateStanding(
  db: Db,
  input: { subscriptionId: string; standing: StandingUpdate },
): Promise<void> {
  const { standing } = input;
  await db.subscription.update({
    where: { id: input.subscriptionId },
    data: {
      status: standing.status,
      lastPaymentSucceededEventAt: standing.lastPaymentSucceededEventAt,
      outstandingFailuresAt: standing.outstandingFailuresAt,
      outstandingPastDueAt: standing.outstandingPastDueAt,
      outstandingFailureInvoiceIds: standing.outstandingFailureInvoiceIds,
      outstandingPastDueInvoiceIds: standing.outstandingPastDueInvoiceIds,
      voidedInvoiceIds: standing.voidedInvoiceIds,
      graceEndsAt: standing.graceEndsAt,
      paymentFailedAt: standing.paymentFailedAt,
      paymentRetryCount: standing.paymentRetryCount,
    },
  });
}

export interface SuspendedRow {
  id: string;
  organization_id: string;
  grace_ends_at: Date;
}

/** Suspends, in one statement, every delinquent subscription whose grace ended by `now`. */
export function suspendExpiredGrace(db: Db, input: { now: Date }): Promise<SuspendedRow[]> {
  return db.$queryRaw<SuspendedRow[]>`
    UPDATE subscriptions SET status = 'suspended', updated_at = now()
     WHERE ${statusInSql(Prisma.raw("status"), DELINQUENT_STATUSES)}
       AND grace_ends_at <= ${input.now}
    RETURNING id, organization_id, grace_ends_at`;
}

/** A subscription's standing, by our id (billing notices check it before they are sent). */
export function findStandingById(
  db: Db,
  input: { subscriptionId: string },
): Promise<{
  status: SubscriptionStatus;
  lastPaymentSucceededEventAt: Date | null;
  voidedInvoiceIds: string[];
} | null> {
  return db.subscription.findUnique({
    where: { id: input.subscriptionId },
    select: { status: true, lastPaymentSucceededEventAt: true, voidedInvoiceIds: true },
  });
}
