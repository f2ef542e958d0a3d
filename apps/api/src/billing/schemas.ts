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
  })
  .openapi("Subscription");

export const CurrentSubscriptionSchema = z
  .object({ data: SubscriptionSchema.nullable() })
  .openapi("CurrentSubscription");

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
