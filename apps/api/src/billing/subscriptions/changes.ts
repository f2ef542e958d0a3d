import type { Plan, Subscription } from "@zigznote/database";
import { ConflictError, NotFoundError } from "@zigznote/shared";
import type Stripe from "stripe";
import { transaction } from "../../lib/afterCommit";
import { ensureCustomer } from "../customers/stripeCustomer";
import { findPurchasablePlan } from "../plans/plans";
import * as planStore from "../plans/store";
import type { BillingDeps } from "../settings";
import {
  cancelSubscriptionNow,
  changeSubscriptionPrice,
  createSubscription,
  firstItem,
  idempotencyKey,
  requireStripe,
  retrieveSubscription,
  setCancelAtPeriodEnd,
  type StripeClient,
} from "../stripe/provider";
import { withLease } from "./lease";
import * as store from "./store";
import { syncOrganizationPlan, toEventTime, upsertSubscriptionFromStripe } from "./sync";

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

    const customerId = await ensureCustomer({ db: deps.db, stripe }, { organizationId });
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
  const current = await planStore.findPlanBySlugOrThrow(deps.db, { slug: live.planSlug });
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
