import { z } from "zod";
import "../http/openapi";

/**
 * Request and response schemas of the billing routes (`/api/v1/billing/*`, `/api/v1/organization`).
 * They describe what the serializers in `src/billing/serializers.ts` produce (camelCase JSON).
 * A null limit means unlimited.
 */

const limit = z.number().int().nonnegative().nullable().openapi({
  description: "null means unlimited",
});

export const PlanSchema = z
  .object({
    slug: z.string().openapi({ example: "pro" }),
    name: z.string(),
    priceCents: z.number().int().nonnegative(),
    rank: z.number().int(),
    limits: z.object({
      teamMembers: limit,
      storageBytes: limit,
      meetingsPerMonth: limit,
    }),
  })
  .openapi("Plan");

export const PlanListSchema = z.object({ data: z.array(PlanSchema) }).openapi("PlanList");

export const SubscriptionStatusSchema = z.enum([
  "incomplete",
  "incomplete_expired",
  "trialing",
  "active",
  "past_due",
  "suspended",
  "unpaid",
  "paused",
  "canceled",
]);

export const SubscriptionSchema = z
  .object({
    id: z.uuid(),
    planSlug: z.string(),
    status: SubscriptionStatusSchema,
    stripeSubscriptionId: z.string(),
    currentPeriodStart: z.iso.datetime().nullable(),
    currentPeriodEnd: z.iso.datetime().nullable(),
    cancelAtPeriodEnd: z.boolean(),
    canceledAt: z.iso.datetime().nullable(),
    graceEndsAt: z.iso.datetime().nullable(),
    paymentFailedAt: z.iso.datetime().nullable(),
    paymentRetryCount: z.number().int().nonnegative(),
    trialEndsAt: z.iso.datetime().nullable().openapi({
      description: "End of the free trial; null without one",
    }),
  })
  .openapi("Subscription");

export const BillingAddressSchema = z
  .object({
    line1: z.string().nullable(),
    line2: z.string().nullable(),
    postalCode: z.string().nullable(),
    city: z.string().nullable(),
    state: z.string().nullable(),
    country: z.string().nullable().openapi({ description: "ISO 3166-1 alpha-2", example: "DE" }),
  })
  .openapi("BillingAddress");

export const TaxIdSchema = z
  .object({
    id: z.string().openapi({ example: "txi_1Pgc6sB7WZ01zgkWXkvC78jZ" }),
    type: z.string().openapi({ description: "Stripe's tax id type", example: "eu_vat" }),
    value: z.string().openapi({ example: "DE123456789" }),
    country: z.string().nullable(),
    verificationStatus: z.string().nullable().openapi({
      description: "pending, verified, unverified or unavailable (Stripe's check, for EU VAT)",
    }),
  })
  .openapi("TaxId");

export const PaymentMethodSchema = z
  .object({
    id: z.string().openapi({ example: "pm_1Pgc75B7WZ01zgkWlHVgdEGJ" }),
    type: z.string().openapi({ example: "card" }),
    brand: z.string().nullable().openapi({ example: "visa" }),
    last4: z.string().nullable().openapi({ example: "4242" }),
    expMonth: z.number().int().min(1).max(12).nullable(),
    expYear: z.number().int().nullable(),
    autoUpdatedAt: z.iso.datetime().nullable().openapi({
      description: "When the card updater last renewed it (the bank sent a new expiry or number)",
    }),
  })
  .openapi("PaymentMethod");

export const PendingConfirmationSchema = z
  .object({
    invoiceId: z.string(),
    amountDue: z.number().int().nonnegative(),
    currency: z.string(),
    hostedInvoiceUrl: z.string().nullable().openapi({
      description: "Stripe's page of the invoice, where the customer confirms the payment",
    }),
    since: z.iso.datetime().openapi({ description: "When Stripe first asked for it" }),
  })
  .openapi("PendingConfirmation");

export const BillingCustomerSchema = z
  .object({
    billingEmail: z.string().nullable(),
    address: BillingAddressSchema.nullable(),
    taxIds: z.array(TaxIdSchema),
    paymentMethod: PaymentMethodSchema.nullable().openapi({
      description: "What Stripe charges: the subscription's payment method, else the customer's",
    }),
  })
  .openapi("BillingCustomer");

export const DisputeSchema = z
  .object({
    id: z.string().openapi({ example: "dp_1Pgc71B7WZ01zgkWMevJiAUx" }),
    chargeId: z.string(),
    amount: z.number().int().nonnegative(),
    currency: z.string(),
    reason: z.string().openapi({
      description: "Stripe's reason: fraudulent, subscription_canceled, general, ...",
    }),
    status: z.string().openapi({
      description:
        "warning_needs_response, warning_under_review, warning_closed (inquiries), " +
        "needs_response, under_review, won, lost, prevented",
    }),
    isOpen: z.boolean(),
    evidenceDueBy: z.iso.datetime().nullable(),
    openedAt: z.iso.datetime(),
    closedAt: z.iso.datetime().nullable(),
  })
  .openapi("Dispute");

export const CurrentSubscriptionSchema = z
  .object({
    data: SubscriptionSchema.nullable(),
    pendingConfirmations: z.array(PendingConfirmationSchema).openapi({
      description:
        "Invoices waiting for the customer to confirm the payment with their bank (3-D Secure), " +
        "until paid or voided; the grace period runs meanwhile as for a failed payment",
    }),
    customer: BillingCustomerSchema.openapi({
      description: "The Stripe customer as Stripe last described it",
    }),
  })
  .openapi("CurrentSubscription");

export const InvoiceSchema = z
  .object({
    id: z.string().openapi({ example: "in_1Pgc6tB7WZ01zgkWu9fdqL6I" }),
    number: z.string().nullable().openapi({ example: "7FE1103-0001" }),
    status: z.string().nullable().openapi({
      description: "draft, open, paid, uncollectible or void",
    }),
    amountDue: z.number().int(),
    amountPaid: z.number().int(),
    amountRemaining: z.number().int(),
    total: z.number().int(),
    currency: z.string(),
    periodStart: z.iso.datetime().nullable(),
    periodEnd: z.iso.datetime().nullable(),
    created: z.iso.datetime(),
    hostedInvoiceUrl: z.string().nullable(),
    invoicePdf: z.string().nullable().openapi({ description: "The invoice as a PDF" }),
  })
  .openapi("Invoice");

export const InvoiceListSchema = z
  .object({
    data: z.array(InvoiceSchema),
    nextCursor: z.string().nullable(),
  })
  .openapi("InvoiceList");

export const ListInvoicesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});

/** `POST /api/v1/billing/portal`. */
export const PortalBodySchema = z
  .object({
    flow: z
      .enum(["payment_method_update", "subscription_cancel", "subscription_update"])
      .optional()
      .openapi({
        description:
          "Open one page of the portal directly: the card form, or the live subscription's " +
          "cancellation or plan change (Stripe's flow_data); the front page without it",
      }),
  })
  .strict()
  .openapi("PortalRequest");

export const PlanViolationSchema = z
  .object({
    type: z.enum(["meetings", "team_members", "storage"]),
    limit: z.number().int().nonnegative(),
    current: z.number().int().nonnegative(),
    action: z.enum(["read_only", "notify_admin", "grace_period"]),
    detectedAt: z.iso.datetime(),
    graceEndsAt: z.iso.datetime().optional(),
    waivedUntil: z.iso.datetime().optional().openapi({
      description: "Waived by zigznote until then: not enforced meanwhile",
    }),
  })
  .openapi("PlanViolation");

export const OrganizationOverviewSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    plan: PlanSchema,
    subscription: SubscriptionSchema.nullable(),
    subscriptionStatus: z.union([SubscriptionStatusSchema, z.literal("none")]),
    usage: z.object({
      teamMembers: z.number().int().nonnegative(),
      storageBytes: z.number().int().nonnegative(),
      meetingsThisMonth: z.number().int().nonnegative(),
    }),
    violations: z.array(PlanViolationSchema),
    violationsCheckedAt: z.iso.datetime().nullable(),
  })
  .openapi("OrganizationOverview");

/** What a billing change answers: the subscription after it, the plan, whether anything changed. */
export const BillingChangeResultSchema = z
  .object({
    data: SubscriptionSchema.nullable(),
    planSlug: z.string(),
    changed: z.boolean().openapi({
      description: "false when the organization was already in the requested state",
    }),
  })
  .openapi("BillingChangeResult");

/** `POST /api/v1/billing/subscription`: subscribe to, or change to, a paid plan. */
export const ChangePlanBodySchema = z
  .object({ planSlug: z.string().trim().min(1).max(64) })
  .strict()
  .openapi("ChangePlanBody");

/** `POST /api/v1/billing/subscription/cancel`. */
export const CancelSubscriptionBodySchema = z
  .object({ atPeriodEnd: z.boolean().default(true) })
  .strict()
  .openapi("CancelSubscriptionBody");

export type ChangePlanBody = z.infer<typeof ChangePlanBodySchema>;
export type CancelSubscriptionBody = z.infer<typeof CancelSubscriptionBodySchema>;

export const CheckoutBodySchema = z
  .object({ planSlug: z.string().min(1).max(64).openapi({ example: "pro" }) })
  .strict()
  .openapi("CheckoutRequest");

export const RedirectUrlSchema = z
  .object({
    url: z.string().openapi({ description: "Stripe's hosted page: send the browser there" }),
  })
  .openapi("BillingRedirect");

export const PreviewQuerySchema = z.object({ planSlug: z.string().min(1).max(64) });

export const PlanChangePreviewSchema = z
  .object({
    planSlug: z.string(),
    currentPlanSlug: z.string(),
    violations: z.array(PlanViolationSchema).openapi({
      description: "What the change would record, by the rules the change itself applies",
    }),
    upcomingInvoice: z
      .object({
        amountDue: z.number().int(),
        total: z.number().int(),
        currency: z.string(),
        periodEnd: z.string().nullable().openapi({ format: "date-time" }),
      })
      .nullable()
      .openapi({ description: "Stripe's preview of the next invoice; null for the free plan" }),
  })
  .openapi("PlanChangePreview");
