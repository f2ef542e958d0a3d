import { randomUUID } from "node:crypto";
import type { Db, Plan, PrismaClient, Subscription } from "@zigznote/database";
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ServiceUnavailableError,
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
import {
  PLAN_GRANTING_STATUSES,
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

export interface BillingServiceDeps {
  db: PrismaClient;
  /** Null when no Stripe key is configured: reads work, changes answer 503. */
  stripe: StripeClient | null;
  clock: Clock;
  logger: Logger;
  settings: BillingSettings;
  /** How long a billing lease lasts (longer than the Stripe calls of one change can take). */
  leaseMs?: number;
}

export interface CancelOptions {
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
export function listPlans(db: Db): Promise<Plan[]> {
  return db.plan.findMany({ orderBy: { rank: "asc" } });
}

/** The organization's plan-granting subscription, if any (the newest). */
export function findLiveSubscription(db: Db, organizationId: string): Promise<Subscription | null> {
  return db.subscription.findFirst({
    where: { organizationId, status: { in: [...PLAN_GRANTING_STATUSES] } },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
}

/** The subscription to show: the live one, else the most recent one, else null. */
export async function getCurrentSubscription(
  db: Db,
  organizationId: string,
): Promise<Subscription | null> {
  return (
    (await findLiveSubscription(db, organizationId)) ??
    db.subscription.findFirst({
      where: { organizationId },
      orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    })
  );
}

/** `GET /organization`: plan, subscription and its status, usage against limits, violations. */
export async function getOrganizationOverview(
  db: Db,
  organizationId: string,
  now: Date,
): Promise<OrganizationOverviewJson> {
  const organization = await db.organization.findFirst({
    where: { id: organizationId, deletedAt: null },
    include: { plan: true },
  });
  if (!organization) throw new NotFoundError("Organization not found");
  const [subscription, usage] = await Promise.all([
    getCurrentSubscription(db, organizationId),
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

export class BillingService {
  private readonly leaseMs: number;

  constructor(private readonly deps: BillingServiceDeps) {
    this.leaseMs = deps.leaseMs ?? DEFAULT_LEASE_MS;
  }

  /**
   * `POST /billing/subscription`: puts the organization on a paid plan, creating its Stripe
   * customer (once) and subscription, or changing the plan of the one it has.
   */
  async subscribe(organizationId: string, planSlug: string): Promise<BillingChangeResult> {
    const plan = await this.findPurchasablePlan(planSlug);
    const stripe = this.requireStripe();
    return this.withLease(organizationId, async (leaseId) => {
      const live = await findLiveSubscription(this.deps.db, organizationId);
      if (live) return this.changeLocked(stripe, organizationId, live, plan, leaseId);

      const customerId = await this.ensureCustomer(stripe, organizationId);
      const created = await createSubscription(
        stripe,
        { customerId, priceId: plan.stripePriceId!, organizationId, planSlug: plan.slug },
        idempotencyKey("op", leaseId, "subscription.create"),
      );
      return this.recordOrCompensate(
        organizationId,
        leaseId,
        created,
        plan.slug,
        () =>
          cancelSubscriptionNow(
            stripe,
            created.id,
            idempotencyKey("op", leaseId, "subscription.create.undo"),
          ),
        "cancel the subscription just created",
      );
    });
  }

  /** Changes the plan of the organization's live subscription (upgrade or downgrade by rank). */
  async changePlan(organizationId: string, planSlug: string): Promise<BillingChangeResult> {
    const plan = await this.findPurchasablePlan(planSlug);
    const stripe = this.requireStripe();
    return this.withLease(organizationId, async (leaseId) => {
      const live = await findLiveSubscription(this.deps.db, organizationId);
      if (!live) {
        throw new NotFoundError("The organization has no subscription to change", {
          code: "NO_ACTIVE_SUBSCRIPTION",
        });
      }
      return this.changeLocked(stripe, organizationId, live, plan, leaseId);
    });
  }

  /** Cancels the live subscription, at the end of the period or now (back to free at once). */
  async cancel(organizationId: string, options: CancelOptions): Promise<BillingChangeResult> {
    const stripe = this.requireStripe();
    return this.withLease(organizationId, async (leaseId) => {
      const live = await findLiveSubscription(this.deps.db, organizationId);
      if (!live) {
        throw new NotFoundError("The organization has no subscription to cancel", {
          code: "NO_ACTIVE_SUBSCRIPTION",
        });
      }
      if (options.atPeriodEnd) {
        if (live.cancelAtPeriodEnd) {
          return { subscription: live, planSlug: live.planSlug, changed: false };
        }
        const updated = await setCancelAtPeriodEnd(
          stripe,
          live.stripeSubscriptionId,
          true,
          idempotencyKey("op", leaseId, "subscription.cancel_at_period_end"),
        );
        return this.recordOrCompensate(
          organizationId,
          leaseId,
          updated,
          live.planSlug,
          () =>
            setCancelAtPeriodEnd(
              stripe,
              live.stripeSubscriptionId,
              false,
              idempotencyKey("op", leaseId, "subscription.cancel_at_period_end.undo"),
            ),
          "withdraw the scheduled cancellation",
        );
      }
      const canceled = await cancelSubscriptionNow(
        stripe,
        live.stripeSubscriptionId,
        idempotencyKey("op", leaseId, "subscription.cancel"),
      );
      // A cancellation cannot be undone at Stripe; if recording it fails, Stripe's
      // customer.subscription.deleted event brings the local state in line.
      return this.recordOrCompensate(organizationId, leaseId, canceled, live.planSlug, null, "", {
        deleted: true,
      });
    });
  }

  private async changeLocked(
    stripe: StripeClient,
    organizationId: string,
    live: Subscription,
    plan: Plan,
    leaseId: string,
  ): Promise<BillingChangeResult> {
    if (live.planSlug === plan.slug && !live.cancelAtPeriodEnd) {
      return { subscription: live, planSlug: live.planSlug, changed: false };
    }
    const current = await this.deps.db.plan.findUniqueOrThrow({ where: { slug: live.planSlug } });
    const remote = await retrieveSubscription(
      stripe,
      live.stripeSubscriptionId,
      idempotencyKey("op", leaseId, "subscription.retrieve"),
    );
    const item = firstItem(remote);
    if (!item) throw new ConflictError("The Stripe subscription has no item to change");
    const updated = await changeSubscriptionPrice(
      stripe,
      {
        subscriptionId: live.stripeSubscriptionId,
        itemId: item.id,
        priceId: plan.stripePriceId!,
        planSlug: plan.slug,
        prorate: plan.rank > current.rank,
        cancelAtPeriodEnd: false,
      },
      idempotencyKey("op", leaseId, "subscription.update"),
    );
    return this.recordOrCompensate(
      organizationId,
      leaseId,
      updated,
      plan.slug,
      () =>
        changeSubscriptionPrice(
          stripe,
          {
            subscriptionId: live.stripeSubscriptionId,
            itemId: item.id,
            priceId: item.price.id,
            planSlug: live.planSlug,
            prorate: false,
            cancelAtPeriodEnd: remote.cancel_at_period_end,
          },
          idempotencyKey("op", leaseId, "subscription.update.undo"),
        ),
      "restore the previous price",
    );
  }

  /**
   * Records Stripe's answer in one transaction (subscription, organization plan, violations).
   * If that fails, runs `undo` at Stripe and rethrows; an undo that fails too is logged at
   * error level with the Stripe id so an operator can act.
   */
  private async recordOrCompensate(
    organizationId: string,
    leaseId: string,
    subscription: Stripe.Subscription,
    planSlug: string,
    undo: (() => Promise<unknown>) | null,
    undoDescription: string,
    options: { deleted?: boolean } = {},
  ): Promise<BillingChangeResult> {
    const now = this.deps.clock.now();
    try {
      return await transaction(this.deps.db, async (tx) => {
        await this.assertLeaseHeld(tx, organizationId, leaseId);
        await upsertSubscriptionFromStripe(tx, subscription, {
          organizationId,
          planSlug,
          observedAt: toEventTime(now),
          deleted: options.deleted ?? false,
          now,
          settings: this.deps.settings,
        });
        const synced = await syncOrganizationPlan(tx, organizationId, now, this.deps.settings);
        const row = await tx.subscription.findUniqueOrThrow({
          where: { stripeSubscriptionId: subscription.id },
        });
        return { subscription: row, planSlug: synced.planSlug, changed: true };
      });
    } catch (error) {
      if (undo) {
        try {
          await undo();
          this.deps.logger.warn(
            { err: error, organizationId, stripeSubscriptionId: subscription.id },
            `billing change not recorded; Stripe change undone (${undoDescription})`,
          );
        } catch (undoError) {
          this.deps.logger.error(
            {
              err: undoError,
              cause: error,
              organizationId,
              stripeSubscriptionId: subscription.id,
            },
            `billing change not recorded and Stripe could not ${undoDescription}: reconcile by hand`,
          );
        }
      } else {
        this.deps.logger.error(
          { err: error, organizationId, stripeSubscriptionId: subscription.id },
          "billing change done at Stripe but not recorded; its webhook will reconcile",
        );
      }
      throw error;
    }
  }

  /** The organization's Stripe customer, created once (idempotency key per organization). */
  private async ensureCustomer(stripe: StripeClient, organizationId: string): Promise<string> {
    const { db } = this.deps;
    const organization = await db.organization.findUniqueOrThrow({
      where: { id: organizationId },
      select: { name: true, stripeCustomerId: true },
    });
    if (organization.stripeCustomerId) return organization.stripeCustomerId;
    const admin = await db.membership.findFirst({
      where: { organizationId, role: "admin", user: { deletedAt: null } },
      orderBy: { createdAt: "asc" },
      select: { user: { select: { email: true } } },
    });
    const customer = await createCustomer(
      stripe,
      { organizationId, name: organization.name, email: admin?.user.email ?? null },
      idempotencyKey("org", organizationId, "customer.create"),
    );
    // Only the first writer sets it; anyone else reads what was stored.
    await db.$executeRaw`
      UPDATE organizations SET stripe_customer_id = ${customer.id}, updated_at = now()
       WHERE id = ${organizationId}::uuid AND stripe_customer_id IS NULL`;
    const stored = await db.organization.findUniqueOrThrow({
      where: { id: organizationId },
      select: { stripeCustomerId: true },
    });
    return stored.stripeCustomerId!;
  }

  private async findPurchasablePlan(planSlug: string): Promise<Plan> {
    const plan = await this.deps.db.plan.findUnique({ where: { slug: planSlug } });
    if (!plan) throw new NotFoundError(`No plan "${planSlug}"`, { code: "PLAN_NOT_FOUND" });
    if (plan.slug === FREE_PLAN_SLUG || !plan.stripePriceId) {
      throw new BadRequestError(
        `The plan "${planSlug}" cannot be subscribed to (cancel the subscription to go back to free)`,
        { code: "PLAN_NOT_PURCHASABLE", details: { planSlug } },
      );
    }
    return plan;
  }

  private requireStripe(): StripeClient {
    if (!this.deps.stripe) {
      throw new ServiceUnavailableError("Billing is not configured on this deployment");
    }
    return this.deps.stripe;
  }

  /** Runs `fn` holding the organization's billing lease (taken and released in autocommit). */
  private async withLease<T>(
    organizationId: string,
    fn: (leaseId: string) => Promise<T>,
  ): Promise<T> {
    const { db, clock } = this.deps;
    const leaseId = randomUUID();
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + this.leaseMs);
    const taken = await db.$executeRaw`
      UPDATE organizations
         SET billing_operation_id = ${leaseId}::uuid, billing_operation_expires_at = ${expiresAt}
       WHERE id = ${organizationId}::uuid AND deleted_at IS NULL
         AND (billing_operation_id IS NULL OR billing_operation_expires_at <= ${now})`;
    if (taken === 0) {
      const exists = await db.organization.count({
        where: { id: organizationId, deletedAt: null },
      });
      if (exists === 0) throw new NotFoundError("Organization not found");
      throw new ConflictError(
        "Another billing change of this organization is in progress; try again shortly",
        { code: "BILLING_CHANGE_IN_PROGRESS" },
      );
    }
    try {
      return await fn(leaseId);
    } finally {
      await db.$executeRaw`
        UPDATE organizations SET billing_operation_id = NULL, billing_operation_expires_at = NULL
         WHERE id = ${organizationId}::uuid AND billing_operation_id = ${leaseId}::uuid`;
    }
  }

  private async assertLeaseHeld(tx: Db, organizationId: string, leaseId: string): Promise<void> {
    const rows = await tx.$queryRaw<{ id: string }[]>`
      SELECT id FROM organizations
       WHERE id = ${organizationId}::uuid AND billing_operation_id = ${leaseId}::uuid
         FOR UPDATE`;
    if (rows.length === 0) {
      throw new ConflictError("The billing change took too long and was superseded", {
        code: "BILLING_CHANGE_IN_PROGRESS",
      });
    }
  }
}
