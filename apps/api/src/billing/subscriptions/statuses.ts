import { Prisma, type SubscriptionStatus } from "@zigznote/database";

/**
 * Subscription status lists billing's rules name, each written once. The SQL that filters on one
 * of them takes it from here (`statusInSql`), never as a copy in the statement's text.
 */

/** Statuses under which the subscription's plan is the organization's plan. */
export const PLAN_GRANTING_STATUSES: readonly SubscriptionStatus[] = [
  "active",
  "trialing",
  "past_due",
  "suspended",
  "unpaid",
];

/** Stripe's delinquent statuses: they start the payment grace period. */
export const DELINQUENT_STATUSES: readonly SubscriptionStatus[] = ["past_due", "unpaid"];

/** `<column> IN (...)` over a status list, each value a parameter cast to the enum. */
export function statusInSql(column: Prisma.Sql, statuses: readonly SubscriptionStatus[]) {
  return Prisma.sql`${column} IN (${Prisma.join(
    statuses.map((status) => Prisma.sql`${status}::"SubscriptionStatus"`),
  )})`;
}
