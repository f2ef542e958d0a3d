import type { Db } from "@zigznote/database";
import * as invoiceStore from "../invoices/store";
import * as customerStore from "./store";

/**
 * What Stripe tells us about an organization's customer, as the API (`GET /billing/subscription`)
 * and the console show it: the billing e-mail and address, the tax ids, the card Stripe will
 * charge and the invoices waiting for the customer's confirmation. Four queries run
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

/** The organization's billing details (see the file's header). */
export async function getBillingDetails(
  db: Db,
  input: { organizationId: string },
): Promise<BillingDetailsJson> {
  const [customer, taxIds, card, confirmations] = await Promise.all([
    customerStore.findBillingCustomer(db, input),
    customerStore.findTaxIds(db, input),
    customerStore.findDefaultPaymentMethod(db, input),
    invoiceStore.findPendingConfirmations(db, input),
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
