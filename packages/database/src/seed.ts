import type { Db } from "./client";

export interface PlanSeed {
  slug: string;
  name: string;
  priceCents: number;
  rank: number;
  maxTeamMembers: number | null;
  maxStorageBytes: bigint | null;
  maxMeetingsPerMonth: number | null;
}

const GIB = 1024n * 1024n * 1024n;

/** The plans every deployment has. Limits: null means unlimited. */
export const DEFAULT_PLANS: readonly PlanSeed[] = [
  {
    slug: "free",
    name: "Free",
    priceCents: 0,
    rank: 0,
    maxTeamMembers: 3,
    maxStorageBytes: 1n * GIB,
    maxMeetingsPerMonth: 10,
  },
  {
    slug: "pro",
    name: "Pro",
    priceCents: 1900,
    rank: 1,
    maxTeamMembers: 15,
    maxStorageBytes: 100n * GIB,
    maxMeetingsPerMonth: 200,
  },
  {
    slug: "business",
    name: "Business",
    priceCents: 4900,
    rank: 2,
    maxTeamMembers: null,
    maxStorageBytes: null,
    maxMeetingsPerMonth: null,
  },
];

export interface SeedPlansOptions {
  /** Stripe price id per plan slug (paid plans); from the deployment's configuration. */
  stripePriceIds?: Partial<Record<string, string | undefined>>;
}

/**
 * Inserts or updates the default plans. Idempotent: running it again changes nothing. A price id
 * that is not configured leaves the stored one as it is: an instance started without
 * STRIPE_PRICE_* (a worker, a tool) must not make the paid plans unpurchasable for the others.
 */
export async function seedPlans(db: Db, options: SeedPlansOptions = {}): Promise<void> {
  for (const plan of DEFAULT_PLANS) {
    const stripePriceId = options.stripePriceIds?.[plan.slug];
    await db.plan.upsert({
      where: { slug: plan.slug },
      create: { ...plan, stripePriceId: stripePriceId ?? null },
      update: { ...plan, ...(stripePriceId ? { stripePriceId } : {}) },
    });
  }
}
