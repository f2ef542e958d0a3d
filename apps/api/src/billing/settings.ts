import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { StripeClient } from "./stripeProvider";
import type { ViolationSettings } from "./violations";

/** Billing rules of a deployment (from config). */
export interface BillingSettings extends ViolationSettings {
  /** Days from the first failed payment to suspension. */
  gracePeriodDays: number;
  /** Dunning notices per grace period; the last one names the suspension date. */
  maxRetryCount: number;
  /** The web app's origin (APP_URL): Checkout's and the portal's return pages are under it. */
  appUrl: string;
}

export function billingSettingsFromConfig(
  config: Config,
  notices: ViolationSettings["notices"],
): BillingSettings {
  return {
    notices,
    gracePeriodDays: config.GRACE_PERIOD_DAYS,
    maxRetryCount: config.MAX_RETRY_COUNT,
    storageGraceDays: config.STORAGE_GRACE_DAYS,
    appUrl: config.APP_URL,
  };
}

/**
 * What event handlers and jobs need besides the transaction: no Express, and no network inside
 * the transaction. `stripe` is only used after commit (cancelling a duplicate subscription,
 * stripeEvents.ts); null without STRIPE_SECRET_KEY.
 */
export interface BillingEventDeps {
  clock: Clock;
  logger: Logger;
  settings: BillingSettings;
  stripe?: StripeClient | null;
}

export const FREE_PLAN_SLUG = "free";
