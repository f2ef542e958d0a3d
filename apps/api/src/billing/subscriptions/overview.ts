import type { Subscription } from "@zigznote/database";
import { NotFoundError } from "@zigznote/shared";
import { getUsage } from "../../recordings";
import { parseViolations } from "../limits/violations";
import {
  serializePlan,
  serializeSubscription,
  serializeUsage,
  type OrganizationOverviewJson,
} from "../serializers";
import type { BillingDeps } from "../settings";
import * as store from "./store";

/** What the organization's pages read of its subscription and plan. */

export interface OrganizationInput {
  organizationId: string;
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
