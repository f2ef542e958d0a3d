import { Prisma, type Db } from "@zigznote/database";
import { PLAN_GRANTING_STATUSES, statusInSql } from "./statuses";

/**
 * The Stripe customer's details as Stripe's events describe them: address and default payment
 * method (`billing_customers`), payment methods, tax ids, and invoices waiting for the customer
 * to confirm a payment. Every write is one statement that applies only when its event is not
 * older than what the row holds (Stripe's `created`), so events apply in any arrival order; a
 * detached payment method, a deleted tax id and a paid or voided invoice are final.
 */

// ---- billing_customers: address and default payment method ----

/**
 * Applies `customer.updated`: the address and the default payment method, each only when the
 * event is not older than the one that set the stored value.
 */
export async function upsertBillingCustomer(
  db: Db,
  input: {
    organizationId: string;
    address: Record<string, unknown> | null;
    defaultPaymentMethodId: string | null;
    observedAt: Date;
  },
): Promise<void> {
  const address = input.address === null ? null : JSON.stringify(input.address);
  await db.$executeRaw`
    INSERT INTO billing_customers
      (organization_id, address, address_at, default_payment_method_id, default_payment_method_at)
    VALUES (${input.organizationId}::uuid, ${address}::jsonb, ${input.observedAt},
            ${input.defaultPaymentMethodId}, ${input.observedAt})
    ON CONFLICT (organization_id) DO UPDATE SET
      address = CASE WHEN billing_customers.address_at IS NULL
                       OR billing_customers.address_at <= EXCLUDED.address_at
                     THEN EXCLUDED.address ELSE billing_customers.address END,
      address_at = GREATEST(billing_customers.address_at, EXCLUDED.address_at),
      default_payment_method_id =
        CASE WHEN billing_customers.default_payment_method_at IS NULL
               OR billing_customers.default_payment_method_at <= EXCLUDED.default_payment_method_at
             THEN EXCLUDED.default_payment_method_id
             ELSE billing_customers.default_payment_method_id END,
      default_payment_method_at =
        GREATEST(billing_customers.default_payment_method_at, EXCLUDED.default_payment_method_at),
      updated_at = now()`;
}

// ---- payment methods ----

export interface PaymentMethodWrite {
  id: string;
  organizationId: string;
  type: string;
  brand: string | null;
  last4: string | null;
  expMonth: number | null;
  expYear: number | null;
  expiresAt: Date | null;
  /** Stripe's `created` of the event. */
  observedAt: Date;
  /** The card updater renewed it (`payment_method.automatically_updated`). */
  isAutoUpdate: boolean;
  /** `payment_method.detached`: final (Stripe never attaches it again). */
  isDetached: boolean;
}

/** Applies a `payment_method.*` event; false when it was older than the row or after a detach. */
export async function upsertPaymentMethod(db: Db, input: PaymentMethodWrite): Promise<boolean> {
  const at = input.observedAt;
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO customer_payment_methods
      (id, organization_id, type, brand, last4, exp_month, exp_year, expires_at, auto_updated_at,
       detached_at, last_event_at)
    VALUES (${input.id}, ${input.organizationId}::uuid, ${input.type}, ${input.brand},
            ${input.last4}, ${input.expMonth}, ${input.expYear}, ${input.expiresAt},
            ${input.isAutoUpdate ? at : null}, ${input.isDetached ? at : null}, ${at})
    ON CONFLICT (id) DO UPDATE SET
      type = EXCLUDED.type,
      brand = COALESCE(EXCLUDED.brand, customer_payment_methods.brand),
      last4 = COALESCE(EXCLUDED.last4, customer_payment_methods.last4),
      exp_month = COALESCE(EXCLUDED.exp_month, customer_payment_methods.exp_month),
      exp_year = COALESCE(EXCLUDED.exp_year, customer_payment_methods.exp_year),
      expires_at = COALESCE(EXCLUDED.expires_at, customer_payment_methods.expires_at),
      auto_updated_at = GREATEST(customer_payment_methods.auto_updated_at, EXCLUDED.auto_updated_at),
      detached_at = EXCLUDED.detached_at,
      last_event_at = EXCLUDED.last_event_at,
      updated_at = now()
    WHERE customer_payment_methods.detached_at IS NULL
      AND customer_payment_methods.last_event_at <= EXCLUDED.last_event_at
    RETURNING id`;
  return rows.length > 0;
}

/** The card Stripe will charge, as the API and the console show it. */
export interface CardRow {
  id: string;
  type: string;
  brand: string | null;
  last4: string | null;
  exp_month: number | null;
  exp_year: number | null;
  expires_at: Date | null;
  auto_updated_at: Date | null;
}

/**
 * The payment method Stripe charges the organization with: the one its live subscription names
 * if still attached, else the customer's default; null when neither is known (or attached).
 */
export async function findDefaultPaymentMethod(
  db: Db,
  input: { organizationId: string },
): Promise<CardRow | null> {
  const rows = await db.$queryRaw<CardRow[]>`
    WITH named AS (
      SELECT
        (SELECT s.default_payment_method_id FROM subscriptions s
          WHERE s.organization_id = ${input.organizationId}::uuid
            AND ${statusInSql(Prisma.raw("s.status"), PLAN_GRANTING_STATUSES)}
          ORDER BY s.created_at DESC, s.id DESC LIMIT 1) AS subscription_pm,
        (SELECT c.default_payment_method_id FROM billing_customers c
          WHERE c.organization_id = ${input.organizationId}::uuid) AS customer_pm)
    SELECT pm.id, pm.type, pm.brand, pm.last4, pm.exp_month, pm.exp_year, pm.expires_at,
           pm.auto_updated_at
      FROM customer_payment_methods pm, named
     WHERE pm.organization_id = ${input.organizationId}::uuid AND pm.detached_at IS NULL
       AND pm.id IN (named.subscription_pm, named.customer_pm)
     ORDER BY (pm.id = named.subscription_pm) DESC NULLS LAST
     LIMIT 1`;
  return rows[0] ?? null;
}

export interface ExpiringCardRow extends CardRow {
  organization_id: string;
}

/**
 * Cards that expire in (now, until] and are what Stripe will charge (`findDefaultPaymentMethod`'s
 * rule) while their organization's live subscription will renew (not set to cancel at the end
 * of its period): one statement, driven by the expiry index.
 */
export function findExpiringDefaultCards(
  db: Db,
  input: { now: Date; until: Date },
): Promise<ExpiringCardRow[]> {
  return db.$queryRaw<ExpiringCardRow[]>`
    SELECT pm.organization_id, pm.id, pm.type, pm.brand, pm.last4, pm.exp_month, pm.exp_year,
           pm.expires_at, pm.auto_updated_at
      FROM customer_payment_methods pm
      JOIN organizations o ON o.id = pm.organization_id AND o.deleted_at IS NULL
      JOIN LATERAL (
        SELECT s.default_payment_method_id, s.cancel_at_period_end FROM subscriptions s
         WHERE s.organization_id = pm.organization_id
           AND ${statusInSql(Prisma.raw("s.status"), PLAN_GRANTING_STATUSES)}
         ORDER BY s.created_at DESC, s.id DESC LIMIT 1) live ON true
      LEFT JOIN billing_customers c ON c.organization_id = pm.organization_id
     WHERE pm.expires_at > ${input.now} AND pm.expires_at <= ${input.until}
       AND pm.detached_at IS NULL
       AND NOT live.cancel_at_period_end
       AND (pm.id = live.default_payment_method_id
            OR (pm.id = c.default_payment_method_id
                AND NOT EXISTS (
                  SELECT 1 FROM customer_payment_methods named
                   WHERE named.id = live.default_payment_method_id
                     AND named.detached_at IS NULL)))
     ORDER BY pm.expires_at, pm.id`;
}

// ---- tax ids ----

export interface TaxIdWrite {
  id: string;
  organizationId: string;
  type: string;
  value: string;
  country: string | null;
  verificationStatus: string | null;
  observedAt: Date;
  /** `customer.tax_id.deleted`: final. */
  isDeleted: boolean;
}

/** Applies a `customer.tax_id.*` event; false when it was older than the row or after a delete. */
export async function upsertTaxId(db: Db, input: TaxIdWrite): Promise<boolean> {
  const at = input.observedAt;
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO customer_tax_ids
      (id, organization_id, type, value, country, verification_status, deleted_at, last_event_at)
    VALUES (${input.id}, ${input.organizationId}::uuid, ${input.type}, ${input.value},
            ${input.country}, ${input.verificationStatus}, ${input.isDeleted ? at : null}, ${at})
    ON CONFLICT (id) DO UPDATE SET
      type = EXCLUDED.type, value = EXCLUDED.value, country = EXCLUDED.country,
      verification_status = EXCLUDED.verification_status, deleted_at = EXCLUDED.deleted_at,
      last_event_at = EXCLUDED.last_event_at
    WHERE customer_tax_ids.deleted_at IS NULL
      AND customer_tax_ids.last_event_at <= EXCLUDED.last_event_at
    RETURNING id`;
  return rows.length > 0;
}

export interface TaxIdRow {
  id: string;
  type: string;
  value: string;
  country: string | null;
  verification_status: string | null;
}

export function findTaxIds(db: Db, input: { organizationId: string }): Promise<TaxIdRow[]> {
  return db.$queryRaw<TaxIdRow[]>`
    SELECT id, type, value, country, verification_status FROM customer_tax_ids
     WHERE organization_id = ${input.organizationId}::uuid AND deleted_at IS NULL
     ORDER BY type, value, id`;
}

export function findBillingCustomer(
  db: Db,
  input: { organizationId: string },
): Promise<{ address: unknown; billing_email: string | null } | null> {
  return db.$queryRaw<{ address: unknown; billing_email: string | null }[]>`
    SELECT c.address, o.billing_email
      FROM organizations o LEFT JOIN billing_customers c ON c.organization_id = o.id
     WHERE o.id = ${input.organizationId}::uuid`.then((rows) => rows[0] ?? null);
}

// ---- payment confirmations (invoices waiting for the customer's authentication) ----

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
