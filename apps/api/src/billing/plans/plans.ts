import type { Plan } from "@zigznote/database";
import { BadRequestError, NotFoundError, ProviderNotConfiguredError } from "@zigznote/shared";
import { FREE_PLAN_SLUG, type BillingDeps } from "../settings";
import * as store from "./store";

/** Lists the plans, cheapest first. */
export function listPlans(deps: Pick<BillingDeps, "db">): Promise<Plan[]> {
  return store.findPlans(deps.db);
}

/** The plan to pay for: exists, is not free, has a Stripe price (else 404, 400, 503). */
export async function findPurchasablePlan(
  deps: Pick<BillingDeps, "db">,
  planSlug: string,
): Promise<Plan> {
  const plan = await store.findPlanBySlug(deps.db, { slug: planSlug });
  if (!plan) throw new NotFoundError(`No plan "${planSlug}"`, { code: "PLAN_NOT_FOUND" });
  if (plan.slug === FREE_PLAN_SLUG) {
    throw new BadRequestError(
      `The plan "${planSlug}" cannot be subscribed to (cancel the subscription to go back to free)`,
      { code: "PLAN_NOT_PURCHASABLE", details: { planSlug } },
    );
  }
  if (!plan.stripePriceId) {
    // Paid plans get their price from STRIPE_PRICE_<SLUG>, seeded at start-up.
    throw new ProviderNotConfiguredError(
      `The plan "${planSlug}" has no Stripe price configured on this server`,
      { provider: "stripe", variables: [`STRIPE_PRICE_${plan.slug.toUpperCase()}`] },
    );
  }
  return plan;
}
