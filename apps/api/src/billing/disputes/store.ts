import { queryRows, type Db, type SqlDb } from "@zigznote/database";

/**
 * The `disputes` table: chargebacks and inquiries on organizations' payments, as the newest
 * `charge.dispute.*` event applied describes them (Stripe's `created`; a later arrival wins
 * within one second). `closed_at` is set while the status is a closing one.
 */

/** Stripe's statuses of a dispute that is over (won, lost, or an inquiry that closed). */
export const CLOSED_DISPUTE_STATUSES: readonly string[] = [
  "won",
  "lost",
  "warning_closed",
  "prevented",
];

export interface DisputeWrite {
  id: string;
  organizationId: string;
  chargeId: string;
  amount: number;
  currency: string;
  reason: string;
  status: string;
  evidenceDueBy: Date | null;
  openedAt: Date;
  /** Stripe's `created` of the event. */
  observedAt: Date;
}

export interface DisputeRow {
  id: string;
  organization_id: string;
  charge_id: string;
  amount: number;
  currency: string;
  reason: string;
  status: string;
  evidence_due_by: Date | null;
  opened_at: Date;
  closed_at: Date | null;
}

const COLUMNS = `id, organization_id, charge_id, amount, currency, reason, status,
                 evidence_due_by, opened_at, closed_at`;

/**
 * Applies one dispute event in one statement: inserts the dispute, or updates it when the event
 * is not older than the last one applied. Returns the row as stored afterwards and whether
 * this event changed it.
 */
export async function upsertDispute(
  db: Db,
  input: DisputeWrite,
): Promise<{ row: DisputeRow; isApplied: boolean }> {
  const isClosed = CLOSED_DISPUTE_STATUSES.includes(input.status);
  const applied = await db.$queryRaw<DisputeRow[]>`
    INSERT INTO disputes
      (id, organization_id, charge_id, amount, currency, reason, status, evidence_due_by,
       opened_at, closed_at, last_event_at)
    VALUES (${input.id}, ${input.organizationId}::uuid, ${input.chargeId}, ${input.amount},
            ${input.currency}, ${input.reason}, ${input.status}, ${input.evidenceDueBy},
            ${input.openedAt}, ${isClosed ? input.observedAt : null}, ${input.observedAt})
    ON CONFLICT (id) DO UPDATE SET
      amount = EXCLUDED.amount, currency = EXCLUDED.currency, reason = EXCLUDED.reason,
      status = EXCLUDED.status, evidence_due_by = EXCLUDED.evidence_due_by,
      closed_at = CASE WHEN EXCLUDED.closed_at IS NULL THEN NULL
                       ELSE COALESCE(disputes.closed_at, EXCLUDED.closed_at) END,
      last_event_at = EXCLUDED.last_event_at,
      updated_at = now()
    WHERE disputes.last_event_at <= EXCLUDED.last_event_at
    RETURNING id, organization_id, charge_id, amount, currency, reason, status, evidence_due_by,
              opened_at, closed_at`;
  if (applied[0]) return { row: applied[0], isApplied: true };
  const [row] = await db.$queryRawUnsafe<DisputeRow[]>(
    `SELECT ${COLUMNS} FROM disputes WHERE id = $1`,
    input.id,
  );
  return { row: row!, isApplied: false };
}

/** The organization's disputes, newest first (at most `limit`). */
export function findOrganizationDisputes(
  db: Db,
  input: { organizationId: string; limit: number },
): Promise<DisputeRow[]> {
  return db.$queryRawUnsafe<DisputeRow[]>(
    `SELECT ${COLUMNS} FROM disputes WHERE organization_id = $1::uuid
      ORDER BY opened_at DESC, id DESC LIMIT $2`,
    input.organizationId,
    input.limit,
  );
}

/** Whether the organization has a dispute that is not closed. */
export async function hasOpenDispute(
  db: SqlDb,
  input: { organizationId: string },
): Promise<boolean> {
  const rows = await queryRows<{ open: boolean }>(
    db,
    `SELECT EXISTS (SELECT 1 FROM disputes
                     WHERE organization_id = $1::uuid AND closed_at IS NULL) AS open`,
    [input.organizationId],
  );
  return rows[0]?.open ?? false;
}

export interface OpenDisputeRow extends DisputeRow {
  organization_name: string;
}

/**
 * How many disputes are open (and how many wait for our response), and the `limit` open ones
 * whose evidence is due first (then the newest), with their organization's name: the
 * overview's two statements.
 */
export async function summarizeOpenDisputes(
  db: Db,
  input: { limit: number },
): Promise<{ open: number; needsResponse: number; soonest: OpenDisputeRow[] }> {
  const [counts, soonest] = await Promise.all([
    db.$queryRaw<{ open: bigint; needs_response: bigint }[]>`
      SELECT count(*) AS open,
             count(*) FILTER (WHERE status IN ('needs_response', 'warning_needs_response'))
               AS needs_response
        FROM disputes WHERE closed_at IS NULL`,
    db.$queryRawUnsafe<OpenDisputeRow[]>(
      `SELECT d.id, d.organization_id, d.charge_id, d.amount, d.currency, d.reason, d.status,
              d.evidence_due_by, d.opened_at, d.closed_at, o.name AS organization_name
         FROM disputes d JOIN organizations o ON o.id = d.organization_id
        WHERE d.closed_at IS NULL
        ORDER BY d.evidence_due_by ASC NULLS LAST, d.opened_at DESC, d.id
        LIMIT $1`,
      input.limit,
    ),
  ]);
  return {
    open: Number(counts[0]?.open ?? 0),
    needsResponse: Number(counts[0]?.needs_response ?? 0),
    soonest,
  };
}
