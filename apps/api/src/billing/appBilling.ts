import type { PrismaClient } from "@zigznote/database";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { Notices } from "../notifications";
import type { ProviderCalls } from "../providerCalls";
import {
  billingSettingsFromConfig,
  type BillingDeps,
  type BillingEventDeps,
  type BillingSettings,
} from "./settings";
import { createStripeClient, stripeSettingsFromConfig, type StripeClient } from "./stripe/provider";

/**
 * Billing as one app uses it, built once by the composition root (`buildContext`): the routes
 * use `deps`, the Stripe webhook handlers and the billing jobs `eventDeps`.
 */
export interface AppBilling {
  settings: BillingSettings;
  /** What the billing service functions (`subscribe`, `cancel`, ...) take. */
  deps: BillingDeps;
  /** What the Stripe event handlers and the billing jobs need (no network, no Express). */
  eventDeps: BillingEventDeps;
}

export interface AppBillingParts {
  config: Config;
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  notices: Notices;
  /** Default: the SDK client configured by STRIPE_* (null without STRIPE_SECRET_KEY). */
  stripe?: StripeClient | null;
  /** The app's provider-call queue: a deleted organization's subscriptions are canceled there. */
  calls?: ProviderCalls;
}

/** Builds the billing service and the handlers' dependencies of one app. */
export function createAppBilling(parts: AppBillingParts): AppBilling {
  const { config, db, clock, logger } = parts;
  const settings = billingSettingsFromConfig(config, parts.notices);
  const stripeSettings = stripeSettingsFromConfig(config);
  const stripe =
    parts.stripe !== undefined
      ? parts.stripe
      : stripeSettings
        ? createStripeClient(stripeSettings)
        : null;
  const deps: BillingDeps = { db, stripe, clock, logger, settings };
  return {
    settings,
    deps,
    eventDeps: { clock, logger, settings, stripe, calls: parts.calls ?? null },
  };
}
