import type { Db, SqlDb } from "@zigznote/database";
import { PaymentRequiredError } from "@zigznote/shared";
import type Stripe from "stripe";
import * as disputeStore from "./store";
import type {
  HandlerOutcome,
  PreparedStripeEventHandler,
  StripeEventDeps,
} from "../stripe/eventOutcome";
import type { BillingEventDeps } from "../settings";
import { findOrganizationId, idOf } from "../stripe/lookup";
import { retrieveCharge } from "../stripe/provider";

/**
 * Disputes (chargebacks and inquiries): `charge.dispute.created` / `.updated` / `.closed` are
 * recorded against the organization (amount, reason, status, evidence due date), newest event
 * first whatever the arrival order, and zigznote's operators are e-mailed once when one opens.
 * A dispute names only its charge, so the charge is read from Stripe before the event's
 * transaction (the webhook framework's prepared handlers) to find the customer: a Stripe that
 * does not answer makes the delivery fail and Stripe retries it, so no dispute is lost.
 *
 * Whether an open dispute restricts the organization is the deployment's choice
 * (DISPUTE_READ_ONLY, off by default): see `assertNoOpenDispute` and BILLING.md, "Disputes".
 */

/** What a dispute event needs from Stripe before its transaction: the charge's customer. */
export interface DisputePreparation {
  customerId: string | null;
}

/** Reads the disputed charge's customer (throws when Stripe fails: the delivery is retried). */
export async function prepareDisputeEvent(
  deps: BillingEventDeps,
  event: Stripe.Event,
): Promise<DisputePreparation> {
  const dispute = event.data.object as Stripe.Dispute;
  if (typeof dispute.charge === "object" && dispute.charge !== null) {
    return { customerId: idOf(dispute.charge.customer) };
  }
  if (!deps.stripe) {
    deps.logger.error(
      { eventId: event.id, disputeId: dispute.id },
      "dispute not recorded: STRIPE_SECRET_KEY is needed to read its charge",
    );
    return { customerId: null };
  }
  const charge = await retrieveCharge(deps.stripe, dispute.charge);
  return { customerId: idOf(charge.customer) };
}

/** Records the dispute as of this event and, when it is open, tells the operators once. */
export async function handleDisputeEvent(
  deps: StripeEventDeps,
  event: Stripe.Event,
  prepared: DisputePreparation,
): Promise<HandlerOutcome> {
  const dispute = event.data.object as Stripe.Dispute;
  const organizationId = prepared.customerId
    ? await findOrganizationId(deps.db, prepared.customerId, undefined)
    : null;
  if (!organizationId) {
    deps.logger.warn(
      { eventId: event.id, disputeId: dispute.id },
      "dispute on a charge of an unknown customer: ignored",
    );
    return { applied: false, reason: "unknown_customer" };
  }
  const dueBy = dispute.evidence_details?.due_by;
  const { row, isApplied } = await disputeStore.upsertDispute(deps.db, {
    id: dispute.id,
    organizationId,
    chargeId: idOf(dispute.charge) ?? "",
    amount: dispute.amount,
    currency: dispute.currency,
    reason: dispute.reason,
    status: dispute.status,
    evidenceDueBy: dueBy ? new Date(dueBy * 1000) : null,
    openedAt: new Date(dispute.created * 1000),
    observedAt: new Date(event.created * 1000),
  });
  // Any event showing it open says it opened (the created event may come last, or never).
  if (!disputeStore.CLOSED_DISPUTE_STATUSES.includes(dispute.status)) {
    const queued = await deps.settings.notices.enqueueForOperators(deps.db, [
      {
        organizationId,
        type: "ops.dispute_opened",
        payload: {
          disputeId: row.id,
          chargeId: row.charge_id,
          amount: row.amount,
          currency: row.currency,
          reason: row.reason,
          status: row.status,
          evidenceDueBy: row.evidence_due_by?.toISOString() ?? null,
          isLivemode: dispute.livemode,
        },
        dedupeKey: `dispute-opened:${dispute.id}`,
      },
    ]);
    if (queued > 0) {
      deps.logger.warn(
        { organizationId, disputeId: dispute.id, amount: row.amount, currency: row.currency },
        "payment disputed: operators notified",
      );
    }
  }
  return isApplied
    ? { applied: true, organizationId }
    : { applied: false, reason: "stale", organizationId };
}

const disputeHandler: PreparedStripeEventHandler<DisputePreparation> = {
  prepare: prepareDisputeEvent,
  handle: handleDisputeEvent,
};

/** The dispute events (each prepared: the charge is read first). */
export const stripeDisputeHandlers: Readonly<
  Record<string, PreparedStripeEventHandler<DisputePreparation>>
> = {
  "charge.dispute.created": disputeHandler,
  "charge.dispute.updated": disputeHandler,
  "charge.dispute.closed": disputeHandler,
};

/**
 * With DISPUTE_READ_ONLY: 402 `PAYMENT_DISPUTED` while a payment of the organization is disputed
 * (from the dispute's opening to its closing, won or lost). Checked after billing's write guard,
 * on the same routes; one indexed query, and none when the option is off.
 */
export async function assertNoOpenDispute(
  deps: { db: SqlDb },
  input: { organizationId: string },
): Promise<void> {
  if (await disputeStore.hasOpenDispute(deps.db, input)) {
    throw new PaymentRequiredError(
      "A payment of this organization is disputed with its bank: writes wait until the dispute is closed",
      { code: "PAYMENT_DISPUTED" },
    );
  }
}

// ---- as the API and the console show them ----

export interface DisputeJson {
  id: string;
  chargeId: string;
  amount: number;
  currency: string;
  reason: string;
  status: string;
  isOpen: boolean;
  evidenceDueBy: string | null;
  openedAt: string;
  closedAt: string | null;
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

export function serializeDispute(row: disputeStore.DisputeRow): DisputeJson {
  return {
    id: row.id,
    chargeId: row.charge_id,
    amount: row.amount,
    currency: row.currency,
    reason: row.reason,
    status: row.status,
    isOpen: row.closed_at === null,
    evidenceDueBy: iso(row.evidence_due_by),
    openedAt: row.opened_at.toISOString(),
    closedAt: iso(row.closed_at),
  };
}

/** The organization's disputes, newest first. */
export async function listOrganizationDisputes(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<DisputeJson[]> {
  return (await disputeStore.findOrganizationDisputes(db, input)).map(serializeDispute);
}

/** Open disputes across organizations: counts and the ones whose evidence is due first. */
export async function summarizeOpenDisputes(
  db: Db,
  input: { limit: number },
): Promise<{
  open: number;
  needsResponse: number;
  soonest: (DisputeJson & { organizationId: string; organizationName: string })[];
}> {
  const summary = await disputeStore.summarizeOpenDisputes(db, input);
  return {
    open: summary.open,
    needsResponse: summary.needsResponse,
    soonest: summary.soonest.map((row) => ({
      ...serializeDispute(row),
      organizationId: row.organization_id,
      organizationName: row.organization_name,
    })),
  };
}
