import type { Db } from "@zigznote/database";
import type Stripe from "stripe";
import type { BillingEventDeps } from "./settings";

/** What a Stripe event handler did, for logs and tests. */
export interface HandlerOutcome {
  applied: boolean;
  reason?: string;
  organizationId?: string;
}

/** Thrown when an event refers to a subscription of ours that we have not recorded yet. */
export class SubscriptionNotYetKnownError extends Error {
  constructor(readonly stripeSubscriptionId: string) {
    super(`subscription ${stripeSubscriptionId} is not recorded yet; retry later`);
    this.name = "SubscriptionNotYetKnownError";
  }
}

export type StripeEventHandler = (
  tx: Db,
  event: Stripe.Event,
  deps: BillingEventDeps,
) => Promise<HandlerOutcome>;
