/**
 * Stripe objects as the current API version (the `stripe` SDK's `API_VERSION`) shapes them, for
 * the fake server's answers and events: invoices, charges, disputes, payment methods, tax ids and
 * Customer Portal sessions. Field names, nesting and null-ness follow Stripe's published object
 * fixtures (github.com/stripe/openapi, `openapi/fixtures3.json`); values are the caller's.
 */

type Json = Record<string, unknown>;

const DAY_S = 24 * 60 * 60;

/** An address with every field, as Stripe answers one (null fields when unknown). */
export function addressObject(input: Partial<Record<string, string | null>> = {}): Json {
  return {
    city: input.city ?? null,
    country: input.country ?? null,
    line1: input.line1 ?? null,
    line2: input.line2 ?? null,
    postal_code: input.postal_code ?? null,
    state: input.state ?? null,
  };
}

/** The billing details of a charge or payment method the fake never fills in. */
function emptyBillingDetails(): Json {
  return { address: addressObject(), email: null, name: null, phone: null, tax_id: null };
}

export interface InvoiceInput {
  id: string;
  customer: string | null;
  customerEmail: string | null;
  subscriptionId: string;
  /** The subscription's price and item (the invoice's one line). */
  price: Json | null;
  subscriptionItemId: string | null;
  amountDue: number;
  currency: string;
  /** draft | open | paid | uncollectible | void */
  status: string;
  created: number;
  attemptCount: number;
  /** The service period the line bills. */
  periodStart: number;
  periodEnd: number;
  number: string;
  billingReason: string;
}

/** An invoice of a subscription (`parent.subscription_details`, one subscription line). */
export function invoiceObject(input: InvoiceInput): Json {
  const isPaid = input.status === "paid";
  const isOpen = input.status === "open";
  const lineId = `il_${input.id.slice(3)}`;
  return {
    id: input.id,
    object: "invoice",
    account_country: "US",
    account_name: "zigznote",
    account_tax_ids: null,
    amount_due: input.amountDue,
    amount_overpaid: 0,
    amount_paid: isPaid ? input.amountDue : 0,
    amount_remaining: isPaid || input.status === "void" ? 0 : input.amountDue,
    amount_shipping: 0,
    application: null,
    attempt_count: input.attemptCount,
    attempted: input.attemptCount > 0,
    auto_advance: isOpen,
    automatic_tax: {
      enabled: false,
      liability: null,
      status: null,
      disabled_reason: null,
      provider: null,
    },
    automatically_finalizes_at: null,
    billing_reason: input.billingReason,
    collection_method: "charge_automatically",
    created: input.created,
    currency: input.currency,
    custom_fields: null,
    customer: input.customer,
    customer_account: null,
    customer_address: null,
    customer_email: input.customerEmail,
    customer_name: null,
    customer_phone: null,
    customer_shipping: null,
    customer_tax_exempt: "none",
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: input.created,
    ending_balance: 0,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: `https://invoice.stripe.test/i/acct_test/${input.id}`,
    invoice_pdf: `https://pay.stripe.test/invoice/acct_test/${input.id}/pdf`,
    issuer: { type: "self" },
    last_finalization_error: null,
    latest_revision: null,
    lines: {
      object: "list",
      data: [
        {
          id: lineId,
          object: "line_item",
          amount: input.amountDue,
          currency: input.currency,
          description: "1 × zigznote (at the plan's price / month)",
          discount_amounts: [],
          discountable: true,
          discounts: [],
          invoice: input.id,
          livemode: false,
          metadata: {},
          parent: {
            type: "subscription_item_details",
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: false,
              proration_details: { credited_items: null },
              subscription: input.subscriptionId,
              subscription_item: input.subscriptionItemId,
            },
          },
          period: { end: input.periodEnd, start: input.periodStart },
          pretax_credit_amounts: [],
          pricing: {
            type: "price_details",
            price_details: input.price
              ? { price: input.price.id, product: input.price.product }
              : null,
            unit_amount_decimal: input.price ? String(input.price.unit_amount) : null,
          },
          quantity: 1,
          subtotal: input.amountDue,
          taxes: [],
        },
      ],
      has_more: false,
      total_count: 1,
      url: `/v1/invoices/${input.id}/lines`,
    },
    livemode: false,
    metadata: {},
    next_payment_attempt: isOpen ? input.created + 3 * DAY_S : null,
    number: input.number,
    on_behalf_of: null,
    parent: {
      type: "subscription_details",
      quote_details: null,
      subscription_details: { metadata: {}, subscription: input.subscriptionId },
    },
    payment_settings: {
      default_mandate: null,
      payment_method_options: null,
      payment_method_types: null,
    },
    // The previous period's: Stripe keeps the service period on the line.
    period_end: input.periodStart,
    period_start: input.periodStart - 30 * DAY_S,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: input.status,
    status_transitions: {
      finalized_at: input.created,
      marked_uncollectible_at: null,
      paid_at: isPaid ? input.created : null,
      voided_at: input.status === "void" ? input.created : null,
    },
    subtotal: input.amountDue,
    subtotal_excluding_tax: input.amountDue,
    test_clock: null,
    total: input.amountDue,
    total_discount_amounts: [],
    total_excluding_tax: input.amountDue,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: input.created,
  };
}

/** A successful card charge of a customer (what a paid invoice leaves behind). */
export function chargeObject(input: {
  id: string;
  customer: string | null;
  amount: number;
  currency: string;
  created: number;
  paymentIntent: string | null;
  card: { brand: string; last4: string; expMonth: number; expYear: number } | null;
}): Json {
  return {
    id: input.id,
    object: "charge",
    amount: input.amount,
    amount_captured: input.amount,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: `txn_${input.id.slice(3)}`,
    billing_details: emptyBillingDetails(),
    calculated_statement_descriptor: "ZIGZNOTE",
    captured: true,
    created: input.created,
    currency: input.currency,
    customer: input.customer,
    description: "Subscription update",
    disputed: false,
    failure_balance_transaction: null,
    failure_code: null,
    failure_message: null,
    fraud_details: {},
    livemode: false,
    metadata: {},
    on_behalf_of: null,
    outcome: {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: "approved_by_network",
      reason: null,
      risk_level: "normal",
      seller_message: "Payment complete.",
      type: "authorized",
    },
    paid: true,
    payment_intent: input.paymentIntent,
    payment_method: null,
    payment_method_details: input.card
      ? {
          card: {
            brand: input.card.brand,
            country: "US",
            exp_month: input.card.expMonth,
            exp_year: input.card.expYear,
            funding: "credit",
            last4: input.card.last4,
            network: input.card.brand,
          },
          type: "card",
        }
      : null,
    receipt_email: null,
    receipt_number: null,
    receipt_url: null,
    refunded: false,
    review: null,
    shipping: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: "succeeded",
    transfer_data: null,
    transfer_group: null,
  };
}

/** A dispute of a charge (`charge.dispute.*`). */
export function disputeObject(input: {
  id: string;
  charge: string;
  paymentIntent: string | null;
  amount: number;
  currency: string;
  reason: string;
  status: string;
  created: number;
  evidenceDueBy: number | null;
  brand: string;
}): Json {
  return {
    id: input.id,
    object: "dispute",
    amount: input.amount,
    balance_transactions: [],
    charge: input.charge,
    created: input.created,
    currency: input.currency,
    enhanced_eligibility_types: [],
    evidence: {
      access_activity_log: null,
      billing_address: null,
      cancellation_policy: null,
      cancellation_policy_disclosure: null,
      cancellation_rebuttal: null,
      customer_communication: null,
      customer_email_address: null,
      customer_name: null,
      customer_purchase_ip: null,
      customer_signature: null,
      duplicate_charge_documentation: null,
      duplicate_charge_explanation: null,
      duplicate_charge_id: null,
      enhanced_evidence: {},
      product_description: null,
      receipt: null,
      refund_policy: null,
      refund_policy_disclosure: null,
      refund_refusal_explanation: null,
      service_date: null,
      service_documentation: null,
      shipping_address: null,
      shipping_carrier: null,
      shipping_date: null,
      shipping_documentation: null,
      shipping_tracking_number: null,
      uncategorized_file: null,
      uncategorized_text: null,
    },
    evidence_details: {
      due_by: input.evidenceDueBy,
      enhanced_eligibility: {},
      has_evidence: false,
      past_due: false,
      submission_count: 0,
    },
    is_charge_refundable: false,
    livemode: false,
    metadata: {},
    payment_intent: input.paymentIntent,
    payment_method_details: {
      card: {
        brand: input.brand,
        case_type: input.status.startsWith("warning_") ? "inquiry" : "chargeback",
        network_reason_code: "13.2",
      },
      type: "card",
    },
    reason: input.reason,
    status: input.status,
  };
}

/** A card payment method, attached to `customer` (null once detached). */
export function cardPaymentMethodObject(input: {
  id: string;
  customer: string | null;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  created: number;
}): Json {
  return {
    id: input.id,
    object: "payment_method",
    allow_redisplay: "always",
    billing_details: emptyBillingDetails(),
    card: {
      brand: input.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "pass" },
      country: "US",
      display_brand: input.brand,
      exp_month: input.expMonth,
      exp_year: input.expYear,
      fingerprint: `fp${input.last4}${input.brand}`,
      funding: "credit",
      generated_from: null,
      last4: input.last4,
      networks: { available: [input.brand], preferred: null },
      regulated_status: "unregulated",
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: input.created,
    customer: input.customer,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: "card",
  };
}

/** A tax id of a customer. */
export function taxIdObject(input: {
  id: string;
  customer: string;
  type: string;
  value: string;
  country: string | null;
  created: number;
  verificationStatus: string;
}): Json {
  return {
    id: input.id,
    object: "tax_id",
    country: input.country,
    created: input.created,
    customer: input.customer,
    customer_account: null,
    livemode: false,
    owner: { customer: input.customer, customer_account: null, type: "customer" },
    type: input.type,
    value: input.value,
    verification: { status: input.verificationStatus, verified_address: null, verified_name: null },
  };
}

/** A Customer Portal session, at its front page (`flow` null) or at one flow. */
export function portalSessionObject(input: {
  id: string;
  customer: string;
  created: number;
  returnUrl: string | null;
  flow: Json | null;
}): Json {
  return {
    id: input.id,
    object: "billing_portal.session",
    configuration: "bpc_test_default",
    created: input.created,
    customer: input.customer,
    customer_account: null,
    flow: input.flow,
    livemode: false,
    locale: null,
    on_behalf_of: null,
    return_url: input.returnUrl,
    url: `https://billing.stripe.test/p/session/${input.id}`,
  };
}

/** The payment of an invoice (`invoice_payment`): here always paid, by a charge's PaymentIntent. */
export function invoicePaymentObject(input: {
  invoiceId: string;
  chargeId: string;
  paymentIntent: string | null;
  amount: number;
  currency: string;
  created: number;
}): Json {
  return {
    id: `inpay_${input.chargeId.slice(3)}`,
    object: "invoice_payment",
    amount_paid: input.amount,
    amount_requested: input.amount,
    created: input.created,
    currency: input.currency,
    invoice: input.invoiceId,
    is_default: true,
    livemode: false,
    payment: input.paymentIntent
      ? { type: "payment_intent", payment_intent: input.paymentIntent }
      : { type: "charge", charge: input.chargeId },
    status: "paid",
    status_transitions: { canceled_at: null, paid_at: input.created },
  };
}

/** A card refund of a charge, succeeded at once (as card refunds are in test mode). */
export function refundObject(input: {
  id: string;
  charge: string;
  paymentIntent: string | null;
  amount: number;
  currency: string;
  created: number;
  metadata: Json;
  reason: string | null;
}): Json {
  return {
    id: input.id,
    object: "refund",
    amount: input.amount,
    balance_transaction: `txn_${input.id.slice(3)}`,
    charge: input.charge,
    created: input.created,
    currency: input.currency,
    destination_details: {
      card: {
        reference_status: "pending",
        reference_type: "acquirer_reference_number",
        type: "refund",
      },
      type: "card",
    },
    metadata: input.metadata,
    payment_intent: input.paymentIntent,
    reason: input.reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: "succeeded",
    transfer_reversal: null,
  };
}
