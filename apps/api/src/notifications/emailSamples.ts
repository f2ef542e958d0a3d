/**
 * Sample data for every e-mail template and variant: the preview command
 * (`pnpm email:preview`) renders them, and a test checks that every template has one.
 */

const STORAGE_VIOLATION = {
  planSlug: "free",
  type: "storage",
  limit: 1073741824,
  current: 1610612736,
  graceEndsAt: "2026-12-06T09:00:00.000Z",
};

const TRIAL_ENDING = {
  planSlug: "pro",
  trialEnd: "2026-12-06T09:00:00.000Z",
  amount: 1900,
  currency: "usd",
  card: { brand: "visa", last4: "4242" },
};

/** A rendering of every template and variant with sample data (the preview command, tests). */
export const EMAIL_SAMPLES: readonly {
  name: string;
  type: string;
  payload: Record<string, unknown>;
}[] = [
  {
    name: "payment-failed",
    type: "billing.payment_failed",
    payload: {
      attempt: 1,
      maxAttempts: 4,
      amountDue: 1900,
      currency: "usd",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
      hostedInvoiceUrl: "https://invoice.stripe.com/i/acct_example/test_example",
    },
  },
  {
    name: "payment-failed-final",
    type: "billing.payment_failed.final",
    payload: {
      attempt: 4,
      maxAttempts: 4,
      amountDue: 4900,
      currency: "eur",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
      suspendsAt: "2026-12-06T09:00:00.000Z",
      hostedInvoiceUrl: "https://invoice.stripe.com/i/acct_example/test_example",
    },
  },
  {
    name: "payment-action-required",
    type: "billing.payment_action_required",
    payload: {
      amountDue: 4900,
      currency: "eur",
      hostedInvoiceUrl: "https://invoice.stripe.com/i/acct_example/test_example",
      requiredAt: "2026-11-29T09:00:00.000Z",
      graceEndsAt: "2026-12-06T09:00:00.000Z",
    },
  },
  { name: "trial-will-end", type: "billing.trial_will_end", payload: TRIAL_ENDING },
  {
    name: "trial-will-end-no-card",
    type: "billing.trial_will_end",
    payload: { ...TRIAL_ENDING, card: null },
  },
  {
    name: "card-expiring",
    type: "billing.card_expiring",
    payload: {
      brand: "mastercard",
      last4: "4444",
      expMonth: 12,
      expYear: 2026,
      expiresAt: "2027-01-01T00:00:00.000Z",
      daysBefore: 30,
    },
  },
  {
    name: "dispute-opened",
    type: "ops.dispute_opened",
    payload: {
      disputeId: "dp_1Example",
      amount: 1900,
      currency: "usd",
      reason: "subscription_canceled",
      status: "needs_response",
      evidenceDueBy: "2026-12-16T23:59:59.000Z",
      isLivemode: false,
    },
  },
  {
    name: "suspended",
    type: "billing.suspended",
    payload: { graceEndedAt: "2026-12-06T09:00:00.000Z" },
  },
  { name: "access-restored", type: "billing.access_restored", payload: {} },
  {
    name: "access-restored-invoice-voided",
    type: "billing.access_restored",
    payload: { reason: "invoice_voided" },
  },
  {
    name: "duplicate-subscription-canceled",
    type: "billing.duplicate_subscription_canceled",
    payload: {
      keptSubscriptionId: "sub_1PkeptExample",
      keptPlanSlug: "pro",
      canceledSubscriptionId: "sub_1PsecondExample",
      canceledPlanSlug: "business",
    },
  },
  {
    name: "violation-meetings-read-only",
    type: "plan.violation",
    payload: { planSlug: "free", type: "meetings", limit: 10, current: 14, action: "read_only" },
  },
  {
    name: "violation-team-members",
    type: "plan.violation",
    payload: {
      planSlug: "pro",
      type: "team_members",
      limit: 5,
      current: 7,
      action: "notify_admin",
    },
  },
  {
    name: "violation-storage-grace",
    type: "plan.violation",
    payload: { ...STORAGE_VIOLATION, action: "grace_period" },
  },
  {
    name: "violation-storage-read-only",
    type: "plan.violation",
    payload: { ...STORAGE_VIOLATION, action: "read_only" },
  },
  {
    name: "storage-grace-ending",
    type: "plan.storage_grace_ending",
    payload: {
      planSlug: "free",
      limit: 1073741824,
      current: 1610612736,
      graceEndsAt: "2026-11-30T09:00:00.000Z",
    },
  },
  {
    name: "violation-resolved",
    type: "plan.violation_resolved",
    payload: { planSlug: "free", type: "storage" },
  },
];
