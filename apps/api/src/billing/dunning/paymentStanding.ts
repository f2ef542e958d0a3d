import type { Db, PrismaClient, SubscriptionStatus } from "@zigznote/database";
import { transaction } from "../../lib/afterCommit";
import { DAY_MS } from "../../lib/time";
import type { AdminNotice, Notices } from "../../notifications";
import type { BillingSettings } from "../settings";
import { DELINQUENT_STATUSES } from "../subscriptions/statuses";
import * as store from "./store";

/**
 * Payment standing: whether a subscription is paid up, past due or suspended. Two kinds of Stripe
 * event write it (subscription events and invoice outcomes) and Stripe delivers them late and in
 * any order, so the standing is not overwritten by whichever arrives last: it is derived from
 * facts ordered by Stripe's `created` (see project_docs/BILLING.md, "Event order"):
 *
 * - a payment at `t` covers every delinquency fact older than `t` (the newest payment is kept);
 * - delinquency facts not covered stay outstanding: invoice failures (each one counts: the retry
 *   count), and subscription events saying past_due/unpaid and invoices waiting for the
 *   customer's authentication (these only start the grace). Within one second (Stripe's
 *   resolution) the later arrival wins, as for subscription events;
 * - the grace period ends `gracePeriodDays` after the oldest outstanding fact; outstanding facts
 *   whose grace ended make the subscription suspended, here when an event arrives after it ended,
 *   or in the hourly job as time passes;
 * - a voided invoice is owed no more (final): its facts (failures, request for authentication,
 *   the past_due/unpaid subscription events naming it as the latest invoice) stop counting,
 *   whenever they arrive, before or after the void; other invoices' facts keep their grace;
 * - suspension is lifted only by a payment covering an outstanding fact or by a void that
 *   withdraws one, never by a subscription event (a late `updated` saying active, or a newer one
 *   without a payment); a canceled subscription stays canceled.
 *
 * Given the same facts and a clock at least as late, every arrival order ends in the same state.
 */

/**
 * Something Stripe said that bears on the standing, with its `created` time. `invoiceId` is the
 * Stripe invoice the fact is about ("" or absent: unknown), so that a void can withdraw it.
 */
export type StandingFact =
  | { kind: "payment_failed"; at: Date; invoiceId?: string }
  | { kind: "payment_succeeded"; at: Date; invoiceId?: undefined }
  /** `invoice.payment_action_required`: unpaid like a failure, but not a failed attempt. */
  | { kind: "payment_action_required"; at: Date; invoiceId?: string }
  /** `invoice.voided`: nothing is owed on the invoice any more (final). */
  | { kind: "invoice_voided"; at: Date; invoiceId: string }
  | {
      kind: "subscription";
      at: Date;
      stripeStatus: SubscriptionStatus;
      /** True when it is the newest subscription event applied (it sets the plain status). */
      isLatest: boolean;
      /** The subscription's `latest_invoice`: the invoice a past_due/unpaid status is about. */
      invoiceId?: string;
    };

/** What the standing is derived from (columns of `subscriptions`). */
export interface StandingFacts {
  status: SubscriptionStatus;
  lastPaymentSucceededEventAt: Date | null;
  outstandingFailuresAt: Date[];
  /**
   * Facts that start the grace without counting as a failed attempt: subscription events saying
   * past_due/unpaid and requests for the customer's authentication.
   */
  outstandingPastDueAt: Date[];
  /** The invoice of each outstanding failure, index by index ("": unknown). */
  outstandingFailureInvoiceIds: string[];
  /** The invoice of each outstanding past_due fact, index by index ("": unknown). */
  outstandingPastDueInvoiceIds: string[];
  /** The subscription's voided invoices: owed no more, their facts never count. */
  voidedInvoiceIds: string[];
}

/** The facts plus what they mean (also columns, for the API, the guard and the job). */
export interface Standing extends StandingFacts {
  graceEndsAt: Date | null;
  paymentFailedAt: Date | null;
  paymentRetryCount: number;
}

/** Statuses a payment turns into active (the others, like trialing, keep theirs). */
const PAYABLE_STATUSES: readonly SubscriptionStatus[] = [
  "active",
  "past_due",
  "suspended",
  "unpaid",
  "incomplete",
];

/**
 * Statuses of a subscription whose first invoice was never paid (Stripe's `incomplete`, final
 * as `incomplete_expired` after 23 hours): nothing was granted, so an unpaid invoice is no
 * delinquency (no grace period, no dunning, no suspension), and Stripe's word is the status
 * until a payment makes it active.
 */
const NEVER_PAID_STATUSES: readonly SubscriptionStatus[] = ["incomplete", "incomplete_expired"];

/**
 * Statuses a void that withdraws the outstanding facts turns into active (not `incomplete`: a
 * subscription never paid for is granted nothing by a void of its first invoice).
 */
const RELEASABLE_STATUSES: readonly SubscriptionStatus[] = ["past_due", "suspended", "unpaid"];

const time = (date: Date) => date.getTime();

/** An outstanding delinquency fact: Stripe's time and its invoice ("": unknown). */
interface OutstandingFact {
  at: Date;
  invoiceId: string;
}

function zipFacts(times: Date[], invoiceIds: string[]): OutstandingFact[] {
  return times.map((at, index) => ({ at, invoiceId: invoiceIds[index] ?? "" }));
}

/**
 * Applies one fact to a subscription's facts at `now` (the clock when it arrives). Pure.
 * `recorded` is false when the fact changes nothing it is derived from (stale, or canceled).
 */
export function applyStandingFact(
  current: StandingFacts,
  fact: StandingFact,
  now: Date,
  gracePeriodDays: number,
): { next: Standing; recorded: boolean } {
  const paidAt = current.lastPaymentSucceededEventAt;
  const isCovered = (at: Date) => paidAt !== null && time(at) < time(paidAt);
  const isVoided = (invoiceId: string) =>
    invoiceId !== "" && current.voidedInvoiceIds.includes(invoiceId);
  const factInvoice = fact.invoiceId ?? "";
  let lastPaid = paidAt;
  let failures = zipFacts(current.outstandingFailuresAt, current.outstandingFailureInvoiceIds);
  let pastDue = zipFacts(current.outstandingPastDueAt, current.outstandingPastDueInvoiceIds);
  let voided = current.voidedInvoiceIds;
  let recorded = false;
  let isPaying = false;
  let isReleasing = false;

  // Final states record nothing; a subscription never paid for owes no grace period.
  const isFinal = current.status === "canceled" || current.status === "incomplete_expired";
  const isNeverPaid = NEVER_PAID_STATUSES.includes(current.status);
  if (!isFinal) {
    if (fact.kind === "invoice_voided") {
      if (!voided.includes(fact.invoiceId)) {
        const outstanding = failures.length + pastDue.length;
        voided = [...voided, fact.invoiceId];
        failures = failures.filter((failure) => failure.invoiceId !== fact.invoiceId);
        pastDue = pastDue.filter((pending) => pending.invoiceId !== fact.invoiceId);
        recorded = true;
        // It withdrew what was owed: the standing is derived anew from what remains.
        isReleasing = failures.length + pastDue.length < outstanding;
      }
    } else if (isVoided(factInvoice)) {
      // A fact of a voided invoice, arriving late: nothing is owed on it.
    } else if (fact.kind === "payment_failed" && !isCovered(fact.at)) {
      // A failed first invoice leaves it incomplete (Stripe does not retry it): nothing owed.
      if (!isNeverPaid) {
        failures = [...failures, { at: fact.at, invoiceId: factInvoice }];
        recorded = true;
      }
    } else if (fact.kind === "payment_succeeded" && !isCovered(fact.at)) {
      const outstanding = failures.length + pastDue.length;
      lastPaid = fact.at;
      failures = failures.filter((failure) => time(failure.at) > time(fact.at));
      pastDue = pastDue.filter((pending) => time(pending.at) > time(fact.at));
      recorded = true;
      // It pays for something (or nothing was recorded as owed): the standing is derived anew.
      isPaying = outstanding === 0 || failures.length + pastDue.length < outstanding;
    } else if (
      (fact.kind === "payment_action_required" ||
        (fact.kind === "subscription" && DELINQUENT_STATUSES.includes(fact.stripeStatus))) &&
      !isCovered(fact.at) &&
      !isNeverPaid &&
      !pastDue.some(
        (pending) => time(pending.at) === time(fact.at) && pending.invoiceId === factInvoice,
      )
    ) {
      pastDue = [...pastDue, { at: fact.at, invoiceId: factInvoice }];
      recorded = true;
    }
  }

  const times = [...failures, ...pastDue].map((outstanding) => time(outstanding.at));
  const graceEndsAt =
    times.length > 0 ? new Date(Math.min(...times) + gracePeriodDays * DAY_MS) : null;
  const failureTimes = failures.map((failure) => time(failure.at));
  const facts = {
    lastPaymentSucceededEventAt: lastPaid,
    outstandingFailuresAt: failures.map((failure) => failure.at),
    outstandingPastDueAt: pastDue.map((pending) => pending.at),
    outstandingFailureInvoiceIds: failures.map((failure) => failure.invoiceId),
    outstandingPastDueInvoiceIds: pastDue.map((pending) => pending.invoiceId),
    voidedInvoiceIds: voided,
    graceEndsAt,
    paymentFailedAt: failureTimes.length > 0 ? new Date(Math.max(...failureTimes)) : null,
    paymentRetryCount: failures.length,
  };
  const settles = { isPaying, isReleasing };
  return {
    next: { ...facts, status: statusOf(current, fact, settles, graceEndsAt, now) },
    recorded,
  };
}

function statusOf(
  current: StandingFacts,
  fact: StandingFact,
  settles: { isPaying: boolean; isReleasing: boolean },
  graceEndsAt: Date | null,
  now: Date,
): SubscriptionStatus {
  const { isPaying, isReleasing } = settles;
  if (current.status === "canceled" || current.status === "incomplete_expired") {
    return current.status;
  }
  // Lifted only by what settles an outstanding fact: a payment covering it, or its void.
  if (current.status === "suspended" && !isPaying && !isReleasing) return "suspended";
  // Stripe's own word on the status: the newest subscription event's, else what we hold.
  const stripeWord =
    fact.kind === "subscription" && fact.isLatest ? fact.stripeStatus : current.status;
  // Never paid for (or expired so): Stripe's word, whatever was outstanding before.
  if (NEVER_PAID_STATUSES.includes(stripeWord) && !isPaying) return stripeWord;
  if (graceEndsAt) {
    if (time(graceEndsAt) <= time(now)) return "suspended";
    return stripeWord === "unpaid" ? "unpaid" : "past_due";
  }
  // Nothing outstanding: a past_due/unpaid event older than the payment says nothing any more.
  if (fact.kind === "subscription" && fact.isLatest) {
    return DELINQUENT_STATUSES.includes(fact.stripeStatus) ? "active" : fact.stripeStatus;
  }
  if (isPaying && PAYABLE_STATUSES.includes(current.status)) return "active";
  // Nothing is owed any more: Stripe says active too once the invoice is voided.
  if (isReleasing && RELEASABLE_STATUSES.includes(current.status)) return "active";
  return current.status;
}

/** A change of standing, for the handlers' notices and outcomes. */
export interface StandingChange {
  subscriptionId: string;
  organizationId: string;
  previous: Standing;
  next: Standing;
  /** The fact changed what the standing is derived from (false: stale or canceled). */
  recorded: boolean;
  /** Anything stored changed (facts or derived columns). */
  changed: boolean;
}

/**
 * Records `fact` on the subscription under its row lock (concurrent events apply one after the
 * other, none is lost) and stores the derived standing. When that suspends it, queues the
 * suspension notice (the same one, deduplicated, as the hourly job's). Null when the
 * subscription is not recorded.
 */
export async function recordStandingFact(
  deps: { db: Db; settings: Pick<BillingSettings, "gracePeriodDays" | "notices"> },
  input: { stripeSubscriptionId: string; fact: StandingFact; now: Date },
): Promise<StandingChange | null> {
  const { db: tx, settings } = deps;
  const { stripeSubscriptionId, fact, now } = input;
  const row = await store.lockStanding(tx, { stripeSubscriptionId });
  if (!row) return null;
  const previous: Standing = {
    status: row.status,
    lastPaymentSucceededEventAt: row.last_payment_succeeded_event_at,
    outstandingFailuresAt: row.outstanding_failures_at ?? [],
    outstandingPastDueAt: row.outstanding_past_due_at ?? [],
    outstandingFailureInvoiceIds: row.outstanding_failure_invoice_ids ?? [],
    outstandingPastDueInvoiceIds: row.outstanding_past_due_invoice_ids ?? [],
    voidedInvoiceIds: row.voided_invoice_ids ?? [],
    graceEndsAt: row.grace_ends_at,
    paymentFailedAt: row.payment_failed_at,
    paymentRetryCount: row.payment_retry_count,
  };
  const { next, recorded } = applyStandingFact(previous, fact, now, settings.gracePeriodDays);
  const changed = !isSameStanding(previous, next);
  if (changed) {
    await store.updateStanding(tx, { subscriptionId: row.id, standing: next });
  }
  if (previous.status !== "suspended" && next.status === "suspended" && next.graceEndsAt) {
    await settings.notices.enqueue(tx, [
      suspensionNotice(row.id, row.organization_id, next.graceEndsAt),
    ]);
  }
  return {
    subscriptionId: row.id,
    organizationId: row.organization_id,
    previous,
    next,
    recorded,
    changed,
  };
}

/** The notice sent once per grace period when a subscription is suspended. */
export function suspensionNotice(
  subscriptionId: string,
  organizationId: string,
  graceEndedAt: Date,
): AdminNotice {
  return {
    organizationId,
    type: "billing.suspended",
    payload: { subscriptionId, graceEndedAt: graceEndedAt.toISOString() },
    dedupeKey: `suspended:${subscriptionId}:${graceEndedAt.toISOString()}`,
  };
}

function isSameStanding(a: Standing, b: Standing): boolean {
  const sameTime = (x: Date | null, y: Date | null) =>
    x === null || y === null ? x === y : time(x) === time(y);
  const sameTimes = (x: Date[], y: Date[]) =>
    x.length === y.length && x.every((at, index) => time(at) === time(y[index]!));
  const sameIds = (x: string[], y: string[]) =>
    x.length === y.length && x.every((id, index) => id === y[index]);
  return (
    a.status === b.status &&
    a.paymentRetryCount === b.paymentRetryCount &&
    sameTime(a.lastPaymentSucceededEventAt, b.lastPaymentSucceededEventAt) &&
    sameTime(a.graceEndsAt, b.graceEndsAt) &&
    sameTime(a.paymentFailedAt, b.paymentFailedAt) &&
    sameTimes(a.outstandingFailuresAt, b.outstandingFailuresAt) &&
    sameTimes(a.outstandingPastDueAt, b.outstandingPastDueAt) &&
    sameIds(a.outstandingFailureInvoiceIds, b.outstandingFailureInvoiceIds) &&
    sameIds(a.outstandingPastDueInvoiceIds, b.outstandingPastDueInvoiceIds) &&
    sameIds(a.voidedInvoiceIds, b.voidedInvoiceIds)
  );
}

/**
 * For the hourly job: past_due (or unpaid) subscriptions whose grace period ended by `now` (no
 * payment came in between, or it would have cleared the grace) become suspended, with a notice,
 * in one transaction. Returns the suspended subscriptions' ids. Events arriving after the grace
 * ended suspend by themselves (paymentStanding.ts); this is the same rule as time passes.
 */
export async function suspendExpiredGracePeriods(
  deps: { db: PrismaClient; notices: Pick<Notices, "enqueue"> },
  input: { now: Date },
): Promise<string[]> {
  return transaction(deps.db, async (tx) => {
    const rows = await store.suspendExpiredGrace(tx, input);
    await deps.notices.enqueue(
      tx,
      rows.map((row) => suspensionNotice(row.id, row.organization_id, row.grace_ends_at)),
    );
    return rows.map((row) => row.id);
  });
}
