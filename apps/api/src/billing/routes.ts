import { defineRoute, type RouteDefinition } from "../http/route";
import { openBillingPortal, previewPlanChange, startCheckout } from "./checkout/checkout";
import { getBillingDetails } from "./customers/details";
import { listInvoices } from "./invoices/invoices";
import { listPlans } from "./plans/plans";
import {
  BillingChangeResultSchema,
  CheckoutBodySchema,
  PlanChangePreviewSchema,
  PreviewQuerySchema,
  RedirectUrlSchema,
  CancelSubscriptionBodySchema,
  ChangePlanBodySchema,
  CurrentSubscriptionSchema,
  InvoiceListSchema,
  ListInvoicesQuery,
  OrganizationOverviewSchema,
  PlanListSchema,
  PortalBodySchema,
} from "./schemas";
import { serializePlan, serializeSubscription } from "./serializers";
import type { BillingDeps } from "./settings";
import { cancel, subscribe, type BillingChangeResult } from "./subscriptions/changes";
import { getCurrentSubscription, getOrganizationOverview } from "./subscriptions/overview";

function serializeChange(result: BillingChangeResult) {
  return {
    data: result.subscription ? serializeSubscription(result.subscription) : null,
    planSlug: result.planSlug,
    changed: result.changed,
  };
}

export type BillingRouteDeps = BillingDeps;

/**
 * `/api/v1/billing` and `/api/v1/organization`. Reads need `billing:read` (every member, keys
 * holding it). Changes need an admin's session: `role: "admin"` refuses API keys, even with
 * `billing:write` (money moves and limits change; a person answers for it). No write guard here:
 * a suspended organization must still be able to pay or change plan.
 */
export function billingRoutes(deps: BillingRouteDeps): RouteDefinition[] {
  const tag = "Billing";
  return [
    defineRoute({
      method: "get",
      path: "/api/v1/billing/plans",
      operationId: "listPlans",
      tag,
      summary: "List the plans and their limits, cheapest first (scope billing:read)",
      scope: "billing:read",
      responses: { 200: { description: "Plans", schema: PlanListSchema } },
      async handler(_input) {
        const plans = await listPlans(deps);
        return { status: 200, body: { data: plans.map(serializePlan) } };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/billing/subscription",
      operationId: "getSubscription",
      tag,
      summary: "The organization's current subscription, or null on free (scope billing:read)",
      description:
        "With the invoices waiting for the customer to confirm a payment (3-D Secure) and the " +
        "Stripe customer's billing e-mail, address, tax ids and the card Stripe charges.",
      scope: "billing:read",
      responses: {
        200: { description: "Current subscription", schema: CurrentSubscriptionSchema },
      },
      async handler({ auth }) {
        const organizationId = auth.organizationId;
        const [subscription, details] = await Promise.all([
          getCurrentSubscription(deps, { organizationId }),
          getBillingDetails(deps.db, { organizationId }),
        ]);
        const { pendingConfirmations, ...customer } = details;
        return {
          status: 200,
          body: {
            data: subscription ? serializeSubscription(subscription) : null,
            pendingConfirmations,
            customer,
          },
        };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/billing/invoices",
      operationId: "listInvoices",
      tag,
      summary: "The organization's invoices, newest first, with their PDF (scope billing:read)",
      description:
        "Read from Stripe page by page: pass `nextCursor` back as `cursor` for the next page " +
        "(a cursor works only for the organization it was given to). An organization that never " +
        "paid has none.",
      scope: "billing:read",
      query: ListInvoicesQuery,
      responses: { 200: { description: "A page of invoices", schema: InvoiceListSchema } },
      errors: ["INVALID_CURSOR", "NOT_FOUND", "STRIPE_ERROR", "PROVIDER_NOT_CONFIGURED"],
      async handler({ query, auth }) {
        return {
          status: 200,
          body: await listInvoices(deps, {
            organizationId: auth.organizationId,
            limit: query.limit,
            cursor: query.cursor,
          }),
        };
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/billing/subscription",
      operationId: "changePlan",
      tag,
      summary: "Subscribe to a paid plan, or change the plan (admins' sessions only)",
      description:
        "Creates the Stripe customer (once) and subscription, or changes the price of the live one " +
        "(upgrades prorated, downgrades not). Plan violations are re-checked in the same transaction.",
      role: "admin",
      body: ChangePlanBodySchema,
      responses: {
        200: {
          description: "The subscription after the change",
          schema: BillingChangeResultSchema,
        },
      },
      errors: [
        "NOT_FOUND",
        "PLAN_NOT_FOUND",
        "PLAN_NOT_PURCHASABLE",
        "CONFLICT",
        "BILLING_CHANGE_IN_PROGRESS",
        "STRIPE_ERROR",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ body, auth }) {
        // Notices a downgrade queues are delivered by the outbox after the change commits.
        const result = await subscribe(deps, {
          organizationId: auth.organizationId,
          planSlug: body.planSlug,
        });
        return { status: 200, body: serializeChange(result) };
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/billing/checkout",
      operationId: "createCheckoutSession",
      tag,
      summary: "Start paying for a plan on Stripe Checkout (admins' sessions only)",
      description:
        "Creates a Checkout Session in subscription mode for the organization's Stripe customer " +
        "(created once), expiring in an hour, after expiring the organization's other open " +
        "sessions: one payable session per organization. The subscription is recorded from " +
        "Stripe's events once paid. An organization with a live subscription (or whose open " +
        "session was just paid) gets 409 SUBSCRIPTION_EXISTS: change its plan with " +
        "POST /api/v1/billing/subscription instead; 409 BILLING_CHANGE_IN_PROGRESS while another " +
        "billing change of the organization (checkout, plan change, cancel) runs.",
      role: "admin",
      body: CheckoutBodySchema,
      responses: { 200: { description: "Checkout's URL", schema: RedirectUrlSchema } },
      errors: [
        "NOT_FOUND",
        "PLAN_NOT_FOUND",
        "PLAN_NOT_PURCHASABLE",
        "SUBSCRIPTION_EXISTS",
        "BILLING_CHANGE_IN_PROGRESS",
        "STRIPE_ERROR",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ body, auth }) {
        const session = await startCheckout(deps, {
          organizationId: auth.organizationId,
          planSlug: body.planSlug,
        });
        return { status: 200, body: { url: session.url } };
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/billing/portal",
      operationId: "createPortalSession",
      tag,
      summary:
        "Open Stripe's Customer Portal: card, invoices, cancellation (admins' sessions only)",
      description:
        "Without a body (or `{}`), the portal's front page. `flow` opens one page directly: " +
        "`payment_method_update` (the card form), `subscription_cancel` or `subscription_update` " +
        "(of the live subscription: 404 NO_ACTIVE_SUBSCRIPTION without one, 409 CONFLICT to " +
        "cancel one already ending at its period's end). Back to the billing page when done.",
      role: "admin",
      body: PortalBodySchema,
      isBodyOptional: true,
      responses: { 200: { description: "The portal's URL", schema: RedirectUrlSchema } },
      errors: [
        "NOT_FOUND",
        "NO_ACTIVE_SUBSCRIPTION",
        "CONFLICT",
        "STRIPE_ERROR",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ body, auth }) {
        return {
          status: 200,
          body: await openBillingPortal(deps, {
            organizationId: auth.organizationId,
            flow: body.flow,
          }),
        };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/billing/preview",
      operationId: "previewPlanChange",
      tag,
      summary: "What changing to a plan would do: violations and Stripe's next invoice",
      description:
        "Reads only (scope billing:read): the violations the change would record, by the same " +
        "rules as the change, and for paid plans Stripe's preview of the next invoice.",
      scope: "billing:read",
      query: PreviewQuerySchema,
      responses: { 200: { description: "The preview", schema: PlanChangePreviewSchema } },
      errors: [
        "NOT_FOUND",
        "PLAN_NOT_FOUND",
        "CONFLICT",
        "STRIPE_ERROR",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ query, auth }) {
        return {
          status: 200,
          body: await previewPlanChange(deps, {
            organizationId: auth.organizationId,
            planSlug: query.planSlug,
          }),
        };
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/billing/subscription/cancel",
      operationId: "cancelSubscription",
      tag,
      summary: "Cancel the subscription at period end (default) or now (admins' sessions only)",
      role: "admin",
      body: CancelSubscriptionBodySchema,
      responses: {
        200: {
          description: "The subscription after the cancellation",
          schema: BillingChangeResultSchema,
        },
      },
      errors: [
        "NOT_FOUND",
        "NO_ACTIVE_SUBSCRIPTION",
        "CONFLICT",
        "BILLING_CHANGE_IN_PROGRESS",
        "STRIPE_ERROR",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ body, auth }) {
        const result = await cancel(deps, {
          organizationId: auth.organizationId,
          atPeriodEnd: body.atPeriodEnd,
        });
        return { status: 200, body: serializeChange(result) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/organization",
      operationId: "getOrganization",
      tag: "Organization",
      summary: "The organization: plan, subscription status, usage against limits, violations",
      description: "Needs billing:read. Works while the subscription is suspended.",
      scope: "billing:read",
      responses: {
        200: { description: "The caller's organization", schema: OrganizationOverviewSchema },
      },
      errors: ["NOT_FOUND"],
      async handler({ auth }) {
        return {
          status: 200,
          body: await getOrganizationOverview(deps, {
            organizationId: auth.organizationId,
            now: deps.clock.now(),
          }),
        };
      },
    }),
  ];
}
