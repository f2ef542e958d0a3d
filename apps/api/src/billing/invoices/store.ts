import type { Db } from "@zigznote/database";

/**
 * The `payment_confirmations` table: invoices waiting for the customer to confirm a payment
 * (3-D Secure). Each write is one statement; a paid or voided invoice is final, so the events
 * apply in any arrival order.
 */

export interface ConfirmationWrite {
  stripeInvoiceId: string;
  organizationId: string;
  subscriptionId: string | null;
  amountDue: number;
  currency: string;
  hostedInvoiceUrl: string | null;
}

/**
 * Records that the invoice waits for the customer's authentication since `requiredAt` (the
 * first request counts). An invoice already paid or voided stays so. True when the invoice is
 * now waiting (a notice is due), false when it was resolved before.
 */
export async function recordConfirmationRequired(
  db: Db,
  input: ConfirmationWrite & { requiredAt: Date },
): Promise<boolean> {
  const rows = await db.$queryRaw<{ resolution: string | null }[]>`
    INSERT INTO payment_confirmations
      (stripe_invoice_id, organization_id, subscription_id, amount_due, currency,
       hosted_invoice_url, required_at)
    VALUES (${input.stripeInvoiceId}, ${input.organizationId}::uuid,
            ${input.subscriptionId}::uuid, ${input.amountDue}, ${input.currency},
            ${input.hostedInvoiceUrl}, ${input.requiredAt})
    ON CONFLICT (stripe_invoice_id) DO UPDATE SET
      required_at = LEAST(payment_confirmations.required_at, EXCLUDED.required_at),
      amount_due = EXCLUDED.amount_due,
      hosted_invoice_url = COALESCE(EXCLUDED.hosted_invoice_url,
                                    payment_confirmations.hosted_invoice_url)
    WHERE payment_confirmations.resolution IS NULL
    RETURNING resolution`;
  return rows.length > 0;
}

/**
 * Records that the invoice was paid or voided (final): a waiting confirmation is resolved, and
 * an invoice not seen waiting yet is remembered as resolved so that a late request for it shows
 * nothing. True when a waiting confirmation was resolved.
 */
export async function resolveConfirmation(
  db: Db,
  input: ConfirmationWrite & { resolution: "paid" | "voided"; resolvedAt: Date },
): Promise<boolean> {
  const rows = await db.$queryRaw<{ required_at: Date | null }[]>`
    INSERT INTO payment_confirmations
      (stripe_invoice_id, organization_id, subscription_id, amount_due, currency,
       hosted_invoice_url, resolution, resolved_at)
    VALUES (${input.stripeInvoiceId}, ${input.organizationId}::uuid,
            ${input.subscriptionId}::uuid, ${input.amountDue}, ${input.currency},
            ${input.hostedInvoiceUrl}, ${input.resolution}, ${input.resolvedAt})
    ON CONFLICT (stripe_invoice_id) DO UPDATE SET
      resolution = EXCLUDED.resolution, resolved_at = EXCLUDED.resolved_at
    WHERE payment_confirmations.resolution IS NULL
    RETURNING required_at`;
  return rows.some((row) => row.required_at !== null);
}

export interface ConfirmationRow {
  stripe_invoice_id: string;
  amount_due: number;
  currency: string;
  hosted_invoice_url: string | null;
  required_at: Date;
}

/** The organization's invoices waiting for authentication, oldest first. */
export function findPendingConfirmations(
  db: Db,
  input: { organizationId: string },
): Promise<ConfirmationRow[]> {
  return db.$queryRaw<ConfirmationRow[]>`
    SELECT stripe_invoice_id, amount_due, currency, hosted_invoice_url, required_at
      FROM payment_confirmations
     WHERE organization_id = ${input.organizationId}::uuid
       AND resolution IS NULL AND required_at IS NOT NULL
     ORDER BY required_at, stripe_invoice_id`;
}

/** Whether the invoice still waits for authentication (its notice checks before sending). */
export async function isConfirmationPending(
  db: Db,
  input: { stripeInvoiceId: string },
): Promise<boolean> {
  const rows = await db.$queryRaw<{ pending: boolean }[]>`
    SELECT resolution IS NULL AS pending FROM payment_confirmations
     WHERE stripe_invoice_id = ${input.stripeInvoiceId}`;
  return rows[0]?.pending ?? false;
}
