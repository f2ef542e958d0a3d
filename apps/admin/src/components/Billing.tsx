import { Link } from "react-router-dom";
import type { Schema } from "../api";
import { formatDateTime, formatMoney, humanize } from "../format";
import { Empty } from "./States";
import { Table } from "./Table";

/**
 * What Stripe tells us about an organization's payments, as the organization page and the
 * overview show it: the card on file, the billing address and tax ids, payments waiting for the
 * customer's confirmation (3-D Secure), and disputes.
 */

type BillingDetails = Schema<"AdminBillingDetails">;
type Dispute = Schema<"Dispute">;
type OverviewDispute = Schema<"AdminOverview">["disputes"]["evidenceDueFirst"][number];

const CARD_BRANDS: Record<string, string> = {
  amex: "American Express",
  diners: "Diners Club",
  discover: "Discover",
  jcb: "JCB",
  mastercard: "Mastercard",
  unionpay: "UnionPay",
  visa: "Visa",
};

/** "Visa •••• 4242", or the payment method's type when it is not a card. */
function cardLabel(method: NonNullable<BillingDetails["paymentMethod"]>): string {
  if (method.type !== "card") return humanize(method.type);
  const brand = method.brand ? (CARD_BRANDS[method.brand] ?? humanize(method.brand)) : "Card";
  return `${brand} •••• ${method.last4 ?? "????"}`;
}

function expiry(method: NonNullable<BillingDetails["paymentMethod"]>): string {
  if (method.expMonth === null || method.expYear === null) return "—";
  return `${String(method.expMonth).padStart(2, "0")}/${method.expYear}`;
}

function addressLines(address: NonNullable<BillingDetails["address"]>): string[] {
  const cityLine = [address.postalCode, address.city].filter(Boolean).join(" ");
  return [address.line1, address.line2, cityLine, address.state, address.country].filter(
    (part): part is string => Boolean(part),
  );
}

/** The card on file, the customer's billing details and what waits for confirmation. */
export function PaymentSection({ billing }: { billing: BillingDetails }) {
  const method = billing.paymentMethod;
  return (
    <section aria-labelledby="payment">
      <h2 id="payment">Payment details</h2>
      <dl className="facts">
        <dt>Card on file</dt>
        <dd data-testid="card-on-file">
          {method ? (
            <>
              <strong>{cardLabel(method)}</strong> · expires {expiry(method)}
              {method.autoUpdatedAt ? (
                <span className="muted">
                  {" "}
                  (renewed by the card updater {formatDateTime(method.autoUpdatedAt)})
                </span>
              ) : null}
            </>
          ) : (
            <span className="muted">none known</span>
          )}
        </dd>
        <dt>Billing e-mail</dt>
        <dd>{billing.billingEmail ?? "—"}</dd>
        <dt>Address</dt>
        <dd data-testid="billing-address">
          {billing.address ? addressLines(billing.address).join(", ") : "—"}
        </dd>
        <dt>Tax ids</dt>
        <dd data-testid="tax-ids">
          {billing.taxIds.length === 0
            ? "—"
            : billing.taxIds.map((taxId) => (
                <div key={taxId.id}>
                  {humanize(taxId.type).toUpperCase()} <code>{taxId.value}</code>
                  {taxId.verificationStatus ? (
                    <span className="muted"> ({taxId.verificationStatus})</span>
                  ) : null}
                </div>
              ))}
        </dd>
      </dl>
      <h3>Waiting for the customer&apos;s confirmation</h3>
      {billing.pendingConfirmations.length === 0 ? (
        <Empty>No payment waits for the customer to confirm it.</Empty>
      ) : (
        <ul className="plain" data-testid="pending-confirmations">
          {billing.pendingConfirmations.map((pending) => (
            <li key={pending.invoiceId} className="callout">
              <div>
                <span className="badge badge-pending">confirmation needed</span>{" "}
                <strong>{formatMoney(pending.amountDue, pending.currency)}</strong> since{" "}
                {formatDateTime(pending.since)}
              </div>
              <div className="muted">
                invoice <code>{pending.invoiceId}</code>
                {pending.hostedInvoiceUrl ? (
                  <>
                    {" "}
                    ·{" "}
                    <a href={pending.hostedInvoiceUrl} target="_blank" rel="noreferrer">
                      invoice page
                    </a>
                  </>
                ) : null}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function DisputeStatus({ dispute }: { dispute: Pick<Dispute, "status" | "isOpen"> }) {
  return (
    <span className={`badge badge-dispute-${dispute.isOpen ? "open" : dispute.status}`}>
      {humanize(dispute.status)}
    </span>
  );
}

/** The organization's disputes, newest first: one card each (they fit a half-width column). */
export function DisputesSection({ disputes }: { disputes: Dispute[] }) {
  return (
    <section aria-labelledby="disputes">
      <h2 id="disputes">Disputes</h2>
      {disputes.length === 0 ? (
        <Empty>No payment of this organization was disputed.</Empty>
      ) : (
        <ul className="cards" data-testid="disputes">
          {disputes.map((dispute) => (
            <li key={dispute.id} className="card">
              <h3>
                {formatMoney(dispute.amount, dispute.currency)} · {humanize(dispute.reason)}{" "}
                <DisputeStatus dispute={dispute} />
              </h3>
              <dl className="facts">
                <dt>Opened</dt>
                <dd>{formatDateTime(dispute.openedAt)}</dd>
                {dispute.isOpen ? (
                  <>
                    <dt>Evidence due</dt>
                    <dd data-testid="evidence-due">{formatDateTime(dispute.evidenceDueBy)}</dd>
                  </>
                ) : (
                  <>
                    <dt>Closed</dt>
                    <dd>{formatDateTime(dispute.closedAt)}</dd>
                  </>
                )}
                <dt>Stripe</dt>
                <dd>
                  <code>{dispute.id}</code>
                </dd>
              </dl>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** The overview's open disputes, the earliest evidence deadline first. */
export function OpenDisputesSection({ disputes }: { disputes: OverviewDispute[] }) {
  return (
    <section aria-labelledby="open-disputes">
      <h2 id="open-disputes">Open disputes</h2>
      {disputes.length === 0 ? (
        <p className="state state-empty">No open disputes.</p>
      ) : (
        <Table
          testId="open-disputes"
          columns={[
            { label: "Organization" },
            { label: "Amount", className: "num" },
            { label: "Reason" },
            { label: "Status" },
            { label: "Evidence due" },
          ]}
        >
          {disputes.map((dispute) => (
            <tr key={dispute.id}>
              <td>
                <Link to={`/organizations/${dispute.organizationId}`}>
                  {dispute.organizationName}
                </Link>
              </td>
              <td className="num">{formatMoney(dispute.amount, dispute.currency)}</td>
              <td>{humanize(dispute.reason)}</td>
              <td>
                <DisputeStatus dispute={dispute} />
              </td>
              <td>{formatDateTime(dispute.evidenceDueBy)}</td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}
