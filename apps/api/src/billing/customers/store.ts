import { Prisma, type Db } from "@zigznote/database";
import { PLAN_GRANTING_STATUSES, statusInSql } from "../subscriptions/statuses";

/**
 * The Stripe customer's details as Stripe's events describe them: address and default payment
 * method (`billing_customers`), payment methods, tax ids, and the organization's customer id and
 * billing e-mail. Every write is one statement that applies only when its event is not older
 * than what the row holds (Stripe's `created`), so events apply in any arrival order; a
 * detached payment method and a deleted tax id are final.
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

// ---- the organization as Stripe's customer ----

/** Our organization for a Stripe customer: by our id (from metadata) first, then by customer. */
export async function findOrganizationIdForCustomer(
  db: Db,
  input: { organizationId: string | null; stripeCustomerId: string | null },
): Promise<string | null> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations
     WHERE (id = ${input.organizationId}::uuid OR stripe_customer_id = ${input.stripeCustomerId})
     ORDER BY (id = ${input.organizationId}::uuid) DESC NULLS LAST
     LIMIT 1`;
  return rows[0]?.id ?? null;
}

export function findOrganizationCustomer(
  db: Db,
  input: { organizationId: string },
): Promise<{ name: string; stripeCustomerId: string | null }> {
  return db.organization.findUniqueOrThrow({
    where: { id: input.organizationId },
    select: { name: true, stripeCustomerId: true },
  });
}

/** The e-mail of the organization's first admin (a live user), or null. */
export async function findFirstAdminEmail(
  db: Db,
  input: { organizationId: string },
): Promise<string | null> {
  const admin = await db.membership.findFirst({
    where: { organizationId: input.organizationId, role: "admin", user: { deletedAt: null } },
    orderBy: { createdAt: "asc" },
    select: { user: { select: { email: true } } },
  });
  return admin?.user.email ?? null;
}

/**
 * Stores the customer id unless one is stored (the first writer wins) or it is a deleted
 * customer (a late event of it); returns the stored one (null if none).
 */
export async function setCustomerIdOnce(
  db: Db,
  input: { organizationId: string } & { stripeCustomerId: string },
): Promise<string | null> {
  await db.$executeRaw`
    UPDATE organizations SET stripe_customer_id = ${input.stripeCustomerId}, updated_at = now()
     WHERE id = ${input.organizationId}::uuid AND stripe_customer_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM deleted_stripe_customers
                        WHERE stripe_customer_id = ${input.stripeCustomerId})`;
  const stored = await db.organization.findUniqueOrThrow({
    where: { id: input.organizationId },
    select: { stripeCustomerId: true },
  });
  return stored.stripeCustomerId;
}

/**
 * Records a Stripe customer of the organization as deleted (final) and unlinks it from the
 * organization if it is still its customer, in one statement. True when it was unlinked.
 */
export async function recordDeletedCustomer(
  db: Db,
  input: { organizationId: string; stripeCustomerId: string; deletedAt: Date },
): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    WITH recorded AS (
      INSERT INTO deleted_stripe_customers (stripe_customer_id, organization_id, deleted_at)
      VALUES (${input.stripeCustomerId}, ${input.organizationId}::uuid, ${input.deletedAt})
      ON CONFLICT (stripe_customer_id) DO NOTHING)
    UPDATE organizations SET stripe_customer_id = NULL, updated_at = now()
     WHERE id = ${input.organizationId}::uuid AND stripe_customer_id = ${input.stripeCustomerId}
    RETURNING id`;
  return rows.length > 0;
}

/** How many of the organization's Stripe customers were deleted (each next one is new). */
export function countDeletedCustomers(db: Db, input: { organizationId: string }): Promise<number> {
  return db.deletedStripeCustomer.count({ where: { organizationId: input.organizationId } });
}

/**
 * Stores the billing e-mail Stripe gave for the organization (by our id, else by its customer
 * id) as of `observedAt` (the event's `created`): an event older than the one that set the
 * stored address changes nothing. A null address writes nothing.
 */
export async function setBillingEmail(
  db: Db,
  input: {
    organizationId?: string | null;
    stripeCustomerId?: string | null;
    email: string | null;
    observedAt: Date;
  },
): Promise<void> {
  if (!input.email) return;
  await db.$executeRaw`
    UPDATE organizations
       SET billing_email = ${input.email}, billing_email_at = ${input.observedAt}, updated_at = now()
     WHERE (id = ${input.organizationId ?? null}::uuid
            OR stripe_customer_id = ${input.stripeCustomerId ?? null})
       AND (billing_email_at IS NULL OR billing_email_at <= ${input.observedAt})
       AND (billing_email IS DISTINCT FROM ${input.email}
            OR billing_email_at IS DISTINCT FROM ${input.observedAt})`;
}
