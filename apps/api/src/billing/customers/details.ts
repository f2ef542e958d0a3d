import type { Db } from "@zigznote/database";
import * as customerStore from "./customerStore";
import * as disputeStore from "./disputeStore";

/**
 * What Stripe tells us about an organization's customer, as the API (`GET /billing/subscription`)
 * and the console show it: the billing e-mail and address, the tax ids, the card Stripe will
 * charge, the invoices waiting for the customer's confirmation, and disputes. Four queries run
 * side by side, whatever the organization's history.
 */

export interface AddressJson {
  line1: string | null;
  line2: string | null;
  postalCode: string | null;
  city: string | null;
  state: string | null;
  country: string | null;
}

export interface PaymentMethodJson {
  id: string;
  type: string;
  brand: string | null;
  last4: string | null;
  expMonth: number | null;
  expYear: number | null;
  /** When the card updater last renewed it (new expiry or number from the bank). */
  autoUpdatedAt: string | null;
}

export interface TaxIdJson {
  id: string;
  type: string;
  value: string;
  country: string | null;
  verificationStatus: string | null;
}

export interface PendingConfirmationJson {
  invoiceId: string;
  amountDue: number;
  currency: string;
  hostedInvoiceUrl: string | null;
  /** Stripe's time of the first request for the customer's authentication. */
  since: string;
}

export interface BillingDetailsJson {
  billingEmail: string | null;
  address: AddressJson | null;
  taxIds: TaxIdJson[];
  paymentMethod: PaymentMethodJson | null;
  pendingConfirmations: PendingConfirmationJson[];
}

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
const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : null);

function serializeAddress(raw: unknown): AddressJson | null {
  if (typeof raw !== "object" || raw === null) return null;
  const address = raw as Record<string, unknown>;
  return {
    line1: text(address.line1),
    line2: text(address.line2),
    postalCode: text(address.postal_code),
    city: text(address.city),
    state: text(address.state),
    country: text(address.country),
  };
}

export function serializePaymentMethod(row: customerStore.CardRow): PaymentMethodJson {
  return {
    id: row.id,
    type: row.type,
    brand: row.brand,
    last4: row.last4,
    expMonth: row.exp_month,
    expYear: row.exp_year,
    autoUpdatedAt: iso(row.auto_updated_at),
  };
}

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

/** The organization's billing details (see the file's header). */
export async function getBillingDetails(
  db: Db,
  input: { organizationId: string },
): Promise<BillingDetailsJson> {
  const [customer, taxIds, card, confirmations] = await Promise.all([
    customerStore.findBillingCustomer(db, input),
    customerStore.findTaxIds(db, input),
    customerStore.findDefaultPaymentMethod(db, input),
    customerStore.findPendingConfirmations(db, input),
  ]);
  return {
    billingEmail: customer?.billing_email ?? null,
    address: serializeAddress(customer?.address),
    taxIds: taxIds.map((row) => ({
      id: row.id,
      type: row.type,
      value: row.value,
      country: row.country,
      verificationStatus: row.verification_status,
    })),
    paymentMethod: card ? serializePaymentMethod(card) : null,
    pendingConfirmations: confirmations.map((row) => ({
      invoiceId: row.stripe_invoice_id,
      amountDue: row.amount_due,
      currency: row.currency,
      hostedInvoiceUrl: row.hosted_invoice_url,
      since: row.required_at.toISOString(),
    })),
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
