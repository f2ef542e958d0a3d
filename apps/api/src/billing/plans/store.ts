import type { Db, Plan } from "@zigznote/database";

/** The `plans` table: what each plan costs and allows. Seeded; billing only reads it. */

/** The plans, cheapest first. */
export function findPlans(db: Db): Promise<Plan[]> {
  return db.plan.findMany({ orderBy: { rank: "asc" } });
}

export function findPlanBySlug(db: Db, input: { slug: string }): Promise<Plan | null> {
  return db.plan.findUnique({ where: { slug: input.slug } });
}

export function findPlanBySlugOrThrow(db: Db, input: { slug: string }): Promise<Plan> {
  return db.plan.findUniqueOrThrow({ where: { slug: input.slug } });
}

/** The slug of the plan sold at this Stripe price, or null. */
export async function findPlanSlugByPrice(
  db: Db,
  input: { stripePriceId: string },
): Promise<string | null> {
  const plan = await db.plan.findUnique({
    where: { stripePriceId: input.stripePriceId },
    select: { slug: true },
  });
  return plan?.slug ?? null;
}
