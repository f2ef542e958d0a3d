import type { PrismaClient } from "@zigznote/database";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { Notices } from "../notifications";
import type { ProviderCalls } from "../providerCalls";
import type { ViolationSettings } from "./limits/violations";
import type { StripeClient } from "./stripe/provider";

/** What Checkout offers besides the plan (STRIPE_* switches; see BILLING.md, "Checkout"). */
export interface CheckoutOptions {
  /** Stripe Tax computes the tax; the billing address is collected (or taken from the customer). */
  automaticTax: boolean;
  /** Business customers may enter a tax id, kept on the customer. */
  taxIdCollection: boolean;
  allowPromotionCodes: boolean;
  /** Days of free trial (0: none); a trial starts without a card. */
  trialDays: number;
}

/** Billing rules of a deployment (from config). */
export interface BillingSettings extends ViolationSettings {
  /** Where billing's notices are queued: the organization's admins, or zigznote's operators. */
  notices: Pick<Notices, "enqueue" | "enqueueForOperators">;
  /** Days from the first failed payment to suspension. */
  gracePeriodDays: number;
  /** Dunning notices per grace period; the last one names the suspension date. */
  maxRetryCount: number;
  /** The web app's origin (APP_URL): Checkout's and the portal's return pages are under it. */
  appUrl: string;
  checkout: CheckoutOptions;
  /** An open dispute makes the organization read-only (DISPUTE_READ_ONLY; default off). */
  isDisputeReadOnly: boolean;
}

export const DEFAULT_CHECKOUT_OPTIONS: CheckoutOptions = {
  automaticTax: false,
  taxIdCollection: false,
  allowPromotionCodes: false,
  trialDays: 0,
};

export function billingSettingsFromConfig(
  config: Config,
  notices: BillingSettings["notices"],
): BillingSettings {
  return {
    notices,
    gracePeriodDays: config.GRACE_PERIOD_DAYS,
    maxRetryCount: config.MAX_RETRY_COUNT,
    storageGraceDays: config.STORAGE_GRACE_DAYS,
    appUrl: config.APP_URL,
    checkout: {
      automaticTax: config.STRIPE_AUTOMATIC_TAX,
      taxIdCollection: config.STRIPE_TAX_ID_COLLECTION,
      allowPromotionCodes: config.STRIPE_ALLOW_PROMOTION_CODES,
      trialDays: config.STRIPE_TRIAL_DAYS,
    },
    isDisputeReadOnly: config.DISPUTE_READ_ONLY,
  };
}

/**
 * What event handlers and jobs need besides the transaction: no Express, and no network inside
 * the transaction. `stripe` is only used outside it (after commit: cancelling a duplicate
 * subscription; before the claim: reading a disputed charge); null without STRIPE_SECRET_KEY.
 */
export interface BillingEventDeps {
  clock: Clock;
  logger: Logger;
  settings: BillingSettings;
  stripe?: StripeClient | null;
  /**
   * Where Stripe calls that must outlive the transaction are queued (a deleted organization's
   * subscription to cancel, the payment of a Checkout it paid late to refund); without it such
   * a subscription is only logged.
   */
  calls?: Pick<ProviderCalls, "enqueue" | "reasonOf"> | null;
}

/** What billing's services (`subscribe`, `cancel`, `startCheckout`, ...) take. */
export interface BillingDeps {
  db: PrismaClient;
  /** Null without STRIPE_SECRET_KEY: reads work, changes answer 503 PROVIDER_NOT_CONFIGURED. */
  stripe: StripeClient | null;
  clock: Clock;
  logger: Logger;
  settings: BillingSettings;
  /** How long a billing lease lasts (longer than the Stripe calls of one change can take). */
  leaseMs?: number;
}

export const FREE_PLAN_SLUG = "free";
