import type { Plan, Subscription } from "@zigznote/database";
import type { Usage } from "../recordings";
import type { PlanViolation } from "./limits/violations";

/** JSON shapes of the billing routes (camelCase; byte counts as numbers; null limit = unlimited). */

export interface PlanJson {
  slug: string;
  name: string;
  priceCents: number;
  rank: number;
  limits: {
    teamMembers: number | null;
    storageBytes: number | null;
    meetingsPerMonth: number | null;
  };
}

export interface SubscriptionJson {
  id: string;
  planSlug: string;
  status: string;
  stripeSubscriptionId: string;
  currentPeriodStart: string | null;
  currentPeriodEnd: string | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: string | null;
  graceEndsAt: string | null;
  paymentFailedAt: string | null;
  paymentRetryCount: number;
  trialEndsAt: string | null;
}

export interface OrganizationOverviewJson {
  id: string;
  name: string;
  plan: PlanJson;
  subscription: SubscriptionJson | null;
  subscriptionStatus: string;
  usage: { teamMembers: number; storageBytes: number; meetingsThisMonth: number };
  violations: PlanViolation[];
  violationsCheckedAt: string | null;
}

const iso = (value: Date | null): string | null => (value ? value.toISOString() : null);

export function serializePlan(plan: Plan): PlanJson {
  return {
    slug: plan.slug,
    name: plan.name,
    priceCents: plan.priceCents,
    rank: plan.rank,
    limits: {
      teamMembers: plan.maxTeamMembers,
      storageBytes: plan.maxStorageBytes === null ? null : Number(plan.maxStorageBytes),
      meetingsPerMonth: plan.maxMeetingsPerMonth,
    },
  };
}

export function serializeSubscription(subscription: Subscription): SubscriptionJson {
  return {
    id: subscription.id,
    planSlug: subscription.planSlug,
    status: subscription.status,
    stripeSubscriptionId: subscription.stripeSubscriptionId,
    currentPeriodStart: iso(subscription.currentPeriodStart),
    currentPeriodEnd: iso(subscription.currentPeriodEnd),
    cancelAtPeriodEnd: subscription.cancelAtPeriodEnd,
    canceledAt: iso(subscription.canceledAt),
    graceEndsAt: iso(subscription.graceEndsAt),
    paymentFailedAt: iso(subscription.paymentFailedAt),
    paymentRetryCount: subscription.paymentRetryCount,
    trialEndsAt: iso(subscription.trialEnd),
  };
}

export function serializeUsage(usage: Usage): OrganizationOverviewJson["usage"] {
  return {
    teamMembers: usage.activeMembers,
    storageBytes: Number(usage.storageBytes),
    meetingsThisMonth: usage.meetingsThisMonth,
  };
}
