import type { Db } from "@zigznote/database";
import type Stripe from "stripe";
import type { BillingEventDeps } from "../settings";

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

/**
 * What a Stripe event handler runs with: billing's event dependencies, and `db`, the transaction
 * in which the webhook framework claims the event (a handler opens none of its own; a throw
 * rolls both back and Stripe retries).
 */
export interface StripeEventDeps extends BillingEventDeps {
  db: Db;
}

/** A Stripe event handler: its dependencies first, then the event (billing's argument order). */
export type StripeEventHandler = (
  deps: StripeEventDeps,
  event: Stripe.Event,
) => Promise<HandlerOutcome>;

/**
 * A Stripe event handler that first reads something from Stripe (`prepare`, before the claim
 * and outside any transaction), then applies the event with what it read.
 */
export interface PreparedStripeEventHandler<TPrepared> {
  prepare(deps: BillingEventDeps, event: Stripe.Event): Promise<TPrepared>;
  handle(deps: StripeEventDeps, event: Stripe.Event, prepared: TPrepared): Promise<HandlerOutcome>;
}
