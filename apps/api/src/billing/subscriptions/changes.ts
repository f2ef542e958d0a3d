import { randomUUID } from "node:crypto";
import type { Plan, PrismaClient, Subscription } from "@zigznote/database";
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ProviderNotConfiguredError,
} from "@zigznote/shared";
import type Stripe from "stripe";
import { transaction } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import { getUsage } from "../recordings";
import {
  serializePlan,
  serializeSubscription,
  serializeUsage,
  type OrganizationOverviewJson,
} from "./serializers";
import { FREE_PLAN_SLUG, type BillingSettings } from "./settings";
import {
  cancelSubscriptionNow,
  changeSubscriptionPrice,
  createCustomer,
  createSubscription,
  firstItem,
  idempotencyKey,
  retrieveSubscription,
  setCancelAtPeriodEnd,
  type StripeClient,
} from "./stripeProvider";
import * as store from "./store";
import {
  syncOrganizationPlan,
  toEventTime,
  upsertSubscriptionFromStripe,
} from "./subscriptionSync";
import { parseViolations } from "./violations";

/**
 * Billing changes through Stripe. Each change follows the same shape:
 * 1. take the organization's billing lease (one change at a time per organization, across
 *    instances; a second concurrent change gets 409 `BILLING_CHANGE_IN_PROGRESS`);
 * 2. call Stripe outside any transaction, with idempotency keys derived from the lease id and
 *    the step (the customer's from the organization id: one customer per organization, ever);
 * 3. record the result in one transaction (subscription row, organization plan, violations),
 *    which first checks the lease is still ours;
 * 4. when step 3 fails, undo step 2 at Stripe (cancel the subscription just created, restore the
 *    previous price or cancellation flag), so Stripe holds nothing we do not track.
 */

export interface BillingDeps {
  db: PrismaClient;
  /** Null without STRIPE_SECRET_KEY: reads work, changes answer 503 PROVIDER_NOT_CONFIGURED. */
  stripe: StripeClient | null;
  clock: Clock;
  logger: Logger;
  settings: BillingSettings;
  /** How long a billing lease lasts (longer than the Stripe calls of one change can take). */
  leaseMs?: number;
}

export interface OrganizationInput {
  organizationId: string;
}

export interface PlanChangeInput extends OrganizationInput {
  planSlug: string;
}

export interface CancelInput extends OrganizationInput {
  /** True: stays on the plan until the period ends; false: back to free now. */
  atPeriodEnd: boolean;
}

export interface BillingChangeResult {
  subscription: Subscription | null;
  planSlug: string;
  /** False when the organization was already in the requested state (nothing was called). */
  changed: boolean;
}

const DEFAULT_LEASE_MS = 5 * 60 * 1000;

/** Lists the plans, cheapest first. */
export function listPlans(deps: Pick<BillingDeps, "db">): Promise<Plan[]> {
  return store.findPlans(deps.db);
}

/** The organization's plan-granting subscription, if any (the newest). */
export function findLiveSubscription(
  deps: Pick<BillingDeps, "db">,
  input: OrganizationInput,
): Promise<Subscription | null> {
  return store.findLiveSubscription(deps.db, input);
}

/** The subscription to show: the live one, else the most recent one, else null. */
export async function getCurrentSubscription(
  deps: Pick<BillingDeps, "db">,
  input: OrganizationInput,
): Promise<Subscription | null> {
  return (
    (await store.findLiveSubscription(deps.db, input)) ??
    store.findLatestSubscription(deps.db, input)
  );
}

/** `GET /organization`: plan, subscription and its status, usage against limits, violations. */
export async function getOrganizationOverview(
  deps: Pick<BillingDeps, "db">,
  input: OrganizationInput & { now: Date },
): Promise<OrganizationOverviewJson> {
  const { db } = deps;
  const { organizationId, now } = input;
  const organization = await store.findOrganizationWithPlan(db, { organizationId });
  if (!organization) throw new NotFoundError("Organization not found");
  const [subscription, usage] = await Promise.all([
    getCurrentSubscription(deps, { organizationId }),
    getUsage(db, organizationId, now),
  ]);
  return {
    id: organization.id,
    name: organization.name,
    plan: serializePlan(organization.plan),
    subscription: subscription ? serializeSubscription(subscription) : null,
    subscriptionStatus: subscription?.status ?? "none",
    usage: serializeUsage(usage),
    violations: parseViolations(organization.planViolations),
    violationsCheckedAt: organization.planViolationsAt?.toISOString() ?? null,
  };
}

/**
 * `POST /billing/subscription`: puts the organization on a paid plan, creating its Stripe
 * customer (once) and subscription, or changing the plan of the one it has.
 */
export async function subscribe(
  deps: BillingDeps,
  input: PlanChangeInput,
): Promise<BillingChangeResult> {
  return withPlanLease(deps, input, async ({ stripe, organizationId, plan, leaseId }) => {
    const live = await store.findLiveSubscription(deps.db, { organizationId });
    if (live) return changeLocked(deps, { stripe, organizationId, live, plan, leaseId });

    const customerId = await ensureCustomer(deps, stripe, organizationId);
    const created = await createSubscription(
      stripe,
      { customerId, priceId: plan.stripePriceId!, organizationId, planSlug: plan.slug },
      idempotencyKey("op", leaseId, "subscription.create"),
    );
    return recordOrCompensate(deps, {
      organizationId,
      leaseId,
      subscription: created,
      planSlug: plan.slug,
      undo: () =>
        cancelSubscriptionNow(
          stripe,
          created.id,
          idempotencyKey("op", leaseId, "subscription.create.undo"),
        ),
      undoDescription: "cancel the subscription just created",
    });
  });
}

/** Changes the plan of the organization's live subscription (upgrade or downgrade by rank). */
export async function changePlan(
  deps: BillingDeps,
  input: PlanChangeInput,
): Promise<BillingChangeResult> {
  return withPlanLease(deps, input, async ({ stripe, organizationId, plan, leaseId }) => {
    const live = await requireLiveSubscription(deps, organizationId, "change");
    return changeLocked(deps, { stripe, organizationId, live, plan, leaseId });
  });
}

/**
 * What subscribing and changing plan both start with: Stripe must be configured and the plan
 * purchasable (checked before anything is locked), then the organization's billing lease.
 */
async function withPlanLease(
  deps: BillingDeps,
  input: PlanChangeInput,
  work: (locked: {
    stripe: StripeClient;
    organizationId: string;
    plan: Plan;
    leaseId: string;
  }) => Promise<BillingChangeResult>,
): Promise<BillingChangeResult> {
  const { organizationId } = input;
  const stripe = requireStripe(deps);
  const plan = await findPurchasablePlan(deps, input.planSlug);
  return withLease(deps, organizationId, (leaseId) =>
    work({ stripe, organizationId, plan, leaseId }),
  );
}

/** Cancels the live subscription, at the end of the period or now (back to free at once). */
export async function cancel(deps: BillingDeps, input: CancelInput): Promise<BillingChangeResult> {
  const { organizationId } = input;
  const stripe = requireStripe(deps);
  return withLease(deps, organizationId, async (leaseId) => {
    const live = await requireLiveSubscription(deps, organizationId, "cancel");
    if (input.atPeriodEnd) {
      if (live.cancelAtPeriodEnd) {
        return { subscription: live, planSlug: live.planSlug, changed: false };
      }
      const updated = await setCancelAtPeriodEnd(
        stripe,
        live.stripeSubscriptionId,
        true,
        idempotencyKey("op", leaseId, "subscription.cancel_at_period_end"),
      );
      return recordOrCompensate(deps, {
        organizationId,
        leaseId,
        subscription: updated,
        planSlug: live.planSlug,
        undo: () =>
          setCancelAtPeriodEnd(
            stripe,
            live.stripeSubscriptionId,
            false,
            idempotencyKey("op", leaseId, "subscription.cancel_at_period_end.undo"),
          ),
        undoDescription: "withdraw the scheduled cancellation",
      });
    }
    const canceled = await cancelSubscriptionNow(
      stripe,
      live.stripeSubscriptionId,
      idempotencyKey("op", leaseId, "subscription.cancel"),
    );
    // A cancellation cannot be undone at Stripe; if recording it fails, Stripe's
    // customer.subscription.deleted event brings the local state in line.
    return recordOrCompensate(deps, {
      organizationId,
      leaseId,
      subscription: canceled,
      planSlug: live.planSlug,
      undo: null,
      undoDescription: "",
      deleted: true,
    });
  });
}

async function requireLiveSubscription(
  deps: BillingDeps,
  organizationId: string,
  verb: "change" | "cancel",
): Promise<Subscription> {
  const live = await store.findLiveSubscription(deps.db, { organizationId });
  if (!live) {
    throw new NotFoundError(`The organization has no subscription to ${verb}`, {
      code: "NO_ACTIVE_SUBSCRIPTION",
    });
  }
  return live;
}

async function changeLocked(
  deps: BillingDeps,
  input: {
    stripe: StripeClient;
    organizationId: string;
    live: Subscription;
    plan: Plan;
    leaseId: string;
  },
): Promise<BillingChangeResult> {
  const { stripe, organizationId, live, plan, leaseId } = input;
  if (live.planSlug === plan.slug && !live.cancelAtPeriodEnd) {
    return { subscription: live, planSlug: live.planSlug, changed: false };
  }
  const current = await store.findPlanBySlugOrThrow(deps.db, { slug: live.planSlug });
  const remote = await retrieveSubscription(
    stripe,
    live.stripeSubscriptionId,
    idempotencyKey("op", leaseId, "subscription.retrieve"),
  );
  const item = firstItem(remote);
  if (!item) throw new ConflictError("The Stripe subscription has no item to change");
  // The change and its undo differ only in the price they set.
  const setPrice = (
    target: { priceId: string; planSlug: string; prorate: boolean; cancelAtPeriodEnd: boolean },
    operation: string,
  ) =>
    changeSubscriptionPrice(
      stripe,
      { subscriptionId: live.stripeSubscriptionId, itemId: item.id, ...target },
      idempotencyKey("op", leaseId, operation),
    );
  const updated = await setPrice(
    {
      priceId: plan.stripePriceId!,
      planSlug: plan.slug,
      prorate: plan.rank > current.rank,
      cancelAtPeriodEnd: false,
    },
    "subscription.update",
  );
  return recordOrCompensate(deps, {
    organizationId,
    leaseId,
    subscription: updated,
    planSlug: plan.slug,
    undo: () =>
      setPrice(
        {
          priceId: item.price.id,
          planSlug: live.planSlug,
          prorate: false,
          cancelAtPeriodEnd: remote.cancel_at_period_end,
        },
        "subscription.update.undo",
      ),
    undoDescription: "restore the previous price",
  });
}

interface RecordInput {
  organizationId: string;
  leaseId: string;
  subscription: Stripe.Subscription;
  planSlug: string;
  undo: (() => Promise<unknown>) | null;
  undoDescription: string;
  deleted?: boolean;
}

/**
 * Records Stripe's answer in one transaction (subscription, organization plan, violations).
 * If that fails, runs `undo` at Stripe and rethrows; an undo that fails too is logged at
 * error level with the Stripe id so an operator can act.
 */
async function recordOrCompensate(
  deps: BillingDeps,
  input: RecordInput,
): Promise<BillingChangeResult> {
  const { organizationId, leaseId, subscription, undo, undoDescription } = input;
  const { logger, settings } = deps;
  const now = deps.clock.now();
  try {
    return await transaction(deps.db, async (tx) => {
      if (!(await store.lockHeldLease(tx, { organizationId, leaseId }))) {
        throw new ConflictError("The billing change took too long and was superseded", {
          code: "BILLING_CHANGE_IN_PROGRESS",
        });
      }
      await upsertSubscriptionFromStripe(
        { db: tx, settings },
        {
          subscription,
          organizationId,
          planSlug: input.planSlug,
          observedAt: toEventTime(now),
          deleted: input.deleted ?? false,
          now,
        },
      );
      const synced = await syncOrganizationPlan({ db: tx, settings }, { organizationId, now });
      const row = await store.findSubscriptionByStripeIdOrThrow(tx, {
        stripeSubscriptionId: subscription.id,
      });
      return { subscription: row, planSlug: synced.planSlug, changed: true };
    });
  } catch (error) {
    const ids = { organizationId, stripeSubscriptionId: subscription.id };
    if (undo) {
      try {
        await undo();
        logger.warn(
          { err: error, ...ids },
          `billing change not recorded; Stripe change undone (${undoDescription})`,
        );
      } catch (undoError) {
        logger.error(
          { err: undoError, cause: error, ...ids },
          `billing change not recorded and Stripe could not ${undoDescription}: reconcile by hand`,
        );
      }
    } else {
      logger.error(
        { err: error, ...ids },
        "billing change done at Stripe but not recorded; its webhook will reconcile",
      );
    }
    throw error;
  }
}

/** The organization's Stripe customer, created once (idempotency key per organization). */
export async function ensureCustomer(
  deps: Pick<BillingDeps, "db">,
  stripe: StripeClient,
  organizationId: string,
): Promise<string> {
  const { db } = deps;
  const organization = await store.findOrganizationCustomer(db, { organizationId });
  if (organization.stripeCustomerId) return organization.stripeCustomerId;
  const email = await store.findFirstAdminEmail(db, { organizationId });
  const customer = await createCustomer(
    stripe,
    { organizationId, name: organization.name, email },
    idempotencyKey("org", organizationId, "customer.create"),
  );
  // Only the first writer sets it; anyone else reads what was stored.
  return store.setCustomerIdOnce(db, { organizationId, stripeCustomerId: customer.id });
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

/** The Stripe client; checked before anything else, so an unconfigured change writes nothing. */
export function requireStripe(deps: Pick<BillingDeps, "stripe">): StripeClient {
  if (!deps.stripe) {
    throw new ProviderNotConfiguredError("Billing is not configured on this server", {
      provider: "stripe",
      variables: ["STRIPE_SECRET_KEY"],
    });
  }
  return deps.stripe;
}

/**
 * Runs `fn` holding the organization's billing lease (taken and released in autocommit); 409
 * `BILLING_CHANGE_IN_PROGRESS` while another change (plan change, cancel, checkout) holds it.
 */
export async function withLease<T>(
  deps: BillingDeps,
  organizationId: string,
  fn: (leaseId: string) => Promise<T>,
): Promise<T> {
  const { db, clock } = deps;
  const leaseId = randomUUID();
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + (deps.leaseMs ?? DEFAULT_LEASE_MS));
  if (!(await store.takeLease(db, { organizationId, leaseId, now, expiresAt }))) {
    if (!(await store.isLiveOrganization(db, { organizationId }))) {
      throw new NotFoundError("Organization not found");
    }
    throw new ConflictError(
      "Another billing change of this organization is in progress; try again shortly",
      { code: "BILLING_CHANGE_IN_PROGRESS" },
    );
  }
  try {
    return await fn(leaseId);
  } finally {
    await store.releaseLease(db, { organizationId, leaseId });
  }
}
