import { randomUUID } from "node:crypto";
import { ConflictError, NotFoundError } from "@zigznote/shared";
import { ensureCustomer } from "../customers/stripeCustomer";
import * as customerStore from "../customers/store";
import { previewPlanViolations, type PlanViolation } from "../limits/violations";
import { findPurchasablePlan } from "../plans/plans";
import * as planStore from "../plans/store";
import { FREE_PLAN_SLUG, type BillingDeps } from "../settings";
import {
  firstItem,
  idempotencyKey,
  previewInvoice,
  requireStripe,
  retrieveSubscription,
} from "../stripe/provider";
import {
  createCheckoutSession,
  createPortalSession,
  expireCheckoutSession,
  listOpenCheckoutSessionIds,
  type PortalFlow,
} from "../stripe/sessions";
import type { PlanChangeInput } from "../subscriptions/changes";
import { withLease } from "../subscriptions/lease";
import * as subscriptionStore from "../subscriptions/store";

/**
 * Paying through Stripe's hosted pages. Checkout takes the card and creates the subscription;
 * its events (`checkout.session.completed`, `customer.subscription.*`, `invoice.*`) bring the
 * local state in step through the same exactly-once, order-aware handlers as any other change.
 * Nothing local is written here but the organization's customer id (once).
 */

/** The web app's billing page, where Checkout and the portal send the customer back. */
export function billingReturnUrl(appUrl: string): string {
  return new URL("/settings/billing", appUrl).toString();
}

/** How long a Checkout Session can be paid (Stripe's minimum is 30 minutes). */
export const CHECKOUT_SESSION_TTL_MS = 60 * 60 * 1000;

/**
 * `POST /billing/checkout`: a Checkout Session for the plan. An organization that has a live
 * subscription changes plan instead (409 `SUBSCRIPTION_EXISTS`): a second subscription would
 * bill twice. One payable session per organization: the session is created holding the
 * organization's billing lease (a concurrent checkout or plan change gets 409
 * `BILLING_CHANGE_IN_PROGRESS`), after every session of its customer that is still open was
 * expired at Stripe. A session found paid while expiring it means the subscription is on its way
 * (409 `SUBSCRIPTION_EXISTS` too). Sessions expire by themselves after an hour.
 */
export async function startCheckout(
  deps: BillingDeps,
  input: PlanChangeInput,
): Promise<{ url: string; sessionId: string }> {
  const { organizationId } = input;
  const stripe = requireStripe(deps);
  const plan = await findPurchasablePlan(deps, input.planSlug);
  if (!(await subscriptionStore.isLiveOrganization(deps.db, { organizationId }))) {
    throw new NotFoundError("Organization not found");
  }
  return withLease(deps, organizationId, async (leaseId) => {
    const live = await subscriptionStore.findLiveSubscription(deps.db, { organizationId });
    if (live) {
      throw new ConflictError(
        "The organization already has a subscription: change its plan with POST /api/v1/billing/subscription",
        {
          code: "SUBSCRIPTION_EXISTS",
          details: { planSlug: live.planSlug, status: live.status },
        },
      );
    }
    const customerId = await ensureCustomer({ db: deps.db, stripe }, { organizationId });
    for (const openId of await listOpenCheckoutSessionIds(stripe, customerId)) {
      const closed = await expireCheckoutSession(
        stripe,
        openId,
        idempotencyKey("op", leaseId, "checkout.expire", openId),
      );
      if (closed.status === "complete") {
        throw new ConflictError(
          "A Checkout Session of the organization was just paid: its subscription is being set up; change its plan with POST /api/v1/billing/subscription",
          { code: "SUBSCRIPTION_EXISTS", details: { checkoutSessionId: closed.id } },
        );
      }
    }
    const returnUrl = billingReturnUrl(deps.settings.appUrl);
    const session = await createCheckoutSession(
      stripe,
      {
        customerId,
        priceId: plan.stripePriceId!,
        organizationId,
        planSlug: plan.slug,
        // Stripe fills {CHECKOUT_SESSION_ID} in; it must stay unencoded.
        successUrl: `${returnUrl}?checkout=success&session_id={CHECKOUT_SESSION_ID}`,
        cancelUrl: `${returnUrl}?checkout=canceled`,
        expiresAt: new Date(deps.clock.now().getTime() + CHECKOUT_SESSION_TTL_MS),
        options: deps.settings.checkout,
      },
      idempotencyKey("op", leaseId, "checkout.create"),
    );
    // Deleted meanwhile (its deletion listed the open sessions before this one existed): this
    // session must not be payable either. The same key as the deletion's own expiry of it.
    if (!(await subscriptionStore.isLiveOrganization(deps.db, { organizationId }))) {
      await expireCheckoutSession(
        stripe,
        session.id,
        idempotencyKey("organization-deleted", session.id, "expire"),
      );
      throw new NotFoundError("Organization not found");
    }
    if (!session.url) throw new ConflictError("Stripe returned a Checkout Session without a URL");
    return { url: session.url, sessionId: session.id };
  });
}

/**
 * `POST /billing/portal`: a Customer Portal session for the organization's customer, at its
 * front page or, with `flow`, at one page: the card form (`payment_method_update`), or the
 * cancellation or plan change of the live subscription (404 `NO_ACTIVE_SUBSCRIPTION` without
 * one; 409 `CONFLICT` to cancel one that already ends at its period's end). Changes made there
 * reach us as Stripe's events, like any other.
 */
export async function openBillingPortal(
  deps: BillingDeps,
  input: { organizationId: string; flow?: PortalFlow },
): Promise<{ url: string }> {
  const stripe = requireStripe(deps);
  const { organizationId, flow } = input;
  if (!(await subscriptionStore.isLiveOrganization(deps.db, { organizationId }))) {
    throw new NotFoundError("Organization not found");
  }
  let subscriptionId: string | null = null;
  if (flow === "subscription_cancel" || flow === "subscription_update") {
    const live = await subscriptionStore.findLiveSubscription(deps.db, { organizationId });
    if (!live) {
      throw new NotFoundError("The organization has no subscription to change or cancel", {
        code: "NO_ACTIVE_SUBSCRIPTION",
      });
    }
    if (flow === "subscription_cancel" && live.cancelAtPeriodEnd) {
      throw new ConflictError("The subscription already ends at the end of its period", {
        details: { currentPeriodEnd: live.currentPeriodEnd?.toISOString() ?? null },
      });
    }
    subscriptionId = live.stripeSubscriptionId;
  }
  const customerId = await ensureCustomer({ db: deps.db, stripe }, { organizationId });
  const session = await createPortalSession(
    stripe,
    {
      customerId,
      returnUrl: billingReturnUrl(deps.settings.appUrl),
      ...(flow ? { flow: { type: flow, subscriptionId } } : {}),
    },
    idempotencyKey("portal", organizationId, randomUUID()),
  );
  return { url: session.url };
}

export interface PlanChangePreview {
  planSlug: string;
  currentPlanSlug: string;
  /** What the change would record (the same rules as the check that follows a change). */
  violations: PlanViolation[];
  /** Stripe's next invoice after the change; null for the free plan. */
  upcomingInvoice: {
    amountDue: number;
    total: number;
    currency: string;
    periodEnd: string | null;
  } | null;
}

/**
 * `GET /billing/preview?planSlug=`: what changing to the plan would do, before it is made. Reads
 * only: the violations are computed with the same rules as `checkPlanViolations` and nothing is
 * recorded or queued; Stripe's invoice preview creates nothing either.
 */
export async function previewPlanChange(
  deps: BillingDeps,
  input: PlanChangeInput,
): Promise<PlanChangePreview> {
  const { db, settings } = deps;
  const { organizationId, planSlug } = input;
  const plan = await planStore.findPlanBySlug(db, { slug: planSlug });
  if (!plan) throw new NotFoundError(`No plan "${planSlug}"`, { code: "PLAN_NOT_FOUND" });
  const organization = await subscriptionStore.findOrganizationWithPlan(db, { organizationId });
  if (!organization) throw new NotFoundError("Organization not found");
  const violations = await previewPlanViolations(
    { db, settings },
    { organizationId, planSlug, now: deps.clock.now() },
  );
  if (!violations) throw new NotFoundError("Organization not found");

  let upcomingInvoice: PlanChangePreview["upcomingInvoice"] = null;
  if (plan.slug !== FREE_PLAN_SLUG) {
    const paid = await findPurchasablePlan(deps, planSlug);
    const stripe = requireStripe(deps);
    const live = await subscriptionStore.findLiveSubscription(db, { organizationId });
    const customer = await customerStore.findOrganizationCustomer(db, { organizationId });
    let subscription: { id: string; itemId: string; prorate: boolean } | null = null;
    if (live) {
      const current = await planStore.findPlanBySlugOrThrow(db, { slug: live.planSlug });
      const remote = await retrieveSubscription(
        stripe,
        live.stripeSubscriptionId,
        idempotencyKey("preview", organizationId, randomUUID()),
      );
      const item = firstItem(remote);
      if (!item) throw new ConflictError("The Stripe subscription has no item to change");
      subscription = { id: remote.id, itemId: item.id, prorate: paid.rank > current.rank };
    }
    const invoice = await previewInvoice(stripe, {
      customerId: customer.stripeCustomerId,
      priceId: paid.stripePriceId!,
      subscription,
    });
    upcomingInvoice = {
      amountDue: invoice.amount_due,
      total: invoice.total,
      currency: invoice.currency,
      periodEnd: invoice.period_end ? new Date(invoice.period_end * 1000).toISOString() : null,
    };
  }
  return {
    planSlug: plan.slug,
    currentPlanSlug: organization.planSlug,
    violations,
    upcomingInvoice,
  };
}
