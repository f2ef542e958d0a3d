import type Stripe from "stripe";
import { decodeCursor, encodeCursor, invalidCursor } from "../../lib/cursor";
import * as customerStore from "../customers/store";
import type { BillingDeps } from "../settings";
import { invoiceCustomerId, listCustomerInvoices, requireStripe } from "../stripe/provider";

/**
 * The organization's invoices, read from Stripe page by page (nothing is copied locally: Stripe
 * keeps the invoices, their PDFs and hosted pages). The cursor carries Stripe's position (the
 * last invoice of the page) and the organization it was issued to, so a cursor of another
 * organization is refused (400 INVALID_CURSOR) rather than passed to Stripe, and every invoice
 * Stripe answers is checked to be the organization's customer's.
 */

export interface InvoiceJson {
  id: string;
  number: string | null;
  status: string | null;
  amountDue: number;
  amountPaid: number;
  amountRemaining: number;
  total: number;
  currency: string;
  periodStart: string | null;
  periodEnd: string | null;
  created: string;
  hostedInvoiceUrl: string | null;
  invoicePdf: string | null;
}

export interface InvoicePage {
  data: InvoiceJson[];
  nextCursor: string | null;
}

const CURSOR_KIND = "invoices";
const INVOICE_ID = /^in_[A-Za-z0-9_]{1,250}$/;

const isoOf = (seconds: number | null | undefined) =>
  seconds ? new Date(seconds * 1000).toISOString() : null;

/**
 * The service period an invoice bills: its subscription line's period (an invoice's own
 * `period_start`/`period_end` are those of the items added before it, the previous period for
 * a renewal), else the invoice's.
 */
function billedPeriod(invoice: Stripe.Invoice): { start: string | null; end: string | null } {
  const line = invoice.lines?.data?.find(
    (item) => item.parent?.type === "subscription_item_details",
  );
  if (line?.period) return { start: isoOf(line.period.start), end: isoOf(line.period.end) };
  return { start: isoOf(invoice.period_start), end: isoOf(invoice.period_end) };
}

export function serializeInvoice(invoice: Stripe.Invoice): InvoiceJson {
  const period = billedPeriod(invoice);
  return {
    id: invoice.id,
    number: invoice.number,
    status: invoice.status,
    amountDue: invoice.amount_due,
    amountPaid: invoice.amount_paid,
    amountRemaining: invoice.amount_remaining,
    total: invoice.total,
    currency: invoice.currency,
    periodStart: period.start,
    periodEnd: period.end,
    created: new Date(invoice.created * 1000).toISOString(),
    hostedInvoiceUrl: invoice.hosted_invoice_url ?? null,
    invoicePdf: invoice.invoice_pdf ?? null,
  };
}

/** `GET /billing/invoices`: one page of the organization's invoices, newest first. */
export async function listInvoices(
  deps: Pick<BillingDeps, "db" | "stripe" | "logger">,
  input: { organizationId: string; limit: number; cursor?: string },
): Promise<InvoicePage> {
  const stripe = requireStripe(deps);
  const { organizationId, limit } = input;
  let startingAfter: string | null = null;
  if (input.cursor !== undefined) {
    const [issuedTo, invoiceId] = decodeCursor(input.cursor, CURSOR_KIND, ["uuid", "text"]);
    if (issuedTo !== organizationId || !INVOICE_ID.test(invoiceId)) throw invalidCursor();
    startingAfter = invoiceId;
  }
  const customer = await customerStore.findOrganizationCustomer(deps.db, { organizationId });
  // No customer yet: nothing was ever billed (and none is created just to look).
  if (!customer.stripeCustomerId) {
    if (startingAfter) throw invalidCursor();
    return { data: [], nextCursor: null };
  }
  const customerId = customer.stripeCustomerId;
  const page = await listCustomerInvoices(stripe, { customerId, limit, startingAfter });
  if (!page) throw invalidCursor();
  const mine = page.data.filter((invoice) => invoiceCustomerId(invoice) === customerId);
  if (mine.length < page.data.length) {
    deps.logger.error(
      { organizationId, customerId, foreign: page.data.length - mine.length },
      "Stripe listed invoices of another customer: left out",
    );
  }
  const last = page.data[page.data.length - 1];
  return {
    data: mine.map(serializeInvoice),
    nextCursor: page.has_more && last ? encodeCursor(CURSOR_KIND, [organizationId, last.id]) : null,
  };
}
