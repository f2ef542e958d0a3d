import type { PrismaClient } from "@zigznote/database";
import type { Config } from "../config";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import {
  createLoggingTransport,
  deliverPendingNotifications,
  type NotificationTransport,
} from "../services/notificationService";
import { BillingService } from "./BillingService";
import { billingSettingsFromConfig, type BillingEventDeps, type BillingSettings } from "./settings";
import { createStripeClient, stripeSettingsFromConfig, type StripeClient } from "./stripeProvider";

/**
 * Billing as one app uses it, built once per app context (`buildContext`): the routes reach it
 * through `ctx.billing.service`, the Stripe webhook handlers through `ctx.billing.eventDeps`, and
 * whoever queued notices calls `ctx.billing.deliverNotifications()` after committing.
 */
export interface AppBilling {
  settings: BillingSettings;
  service: BillingService;
  /** What the Stripe event handlers and the billing jobs need (no network, no Express). */
  eventDeps: BillingEventDeps;
  transport: NotificationTransport;
  /**
   * Sends the pending notices of the outbox. Never rejects (failures are logged and the rows
   * stay pending). Calls that arrive while a run is in progress make it run once more instead
   * of starting a second one; other instances may run at the same time (rows are claimed).
   */
  deliverNotifications(): Promise<void>;
  /** Resolves when no delivery of this app is running (tests, shutdown). */
  idle(): Promise<void>;
}

export interface AppBillingParts {
  config: Config;
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** Default: the SDK client configured by STRIPE_* (null without STRIPE_SECRET_KEY). */
  stripe?: StripeClient | null;
  /** Default: the logging transport. */
  transport?: NotificationTransport;
}

/** Builds the billing service, handler dependencies and notice deliverer of one app. */
export function createAppBilling(parts: AppBillingParts): AppBilling {
  const { config, db, clock, logger } = parts;
  const settings = billingSettingsFromConfig(config);
  const stripeSettings = stripeSettingsFromConfig(config);
  const stripe =
    parts.stripe !== undefined
      ? parts.stripe
      : stripeSettings
        ? createStripeClient(stripeSettings)
        : null;
  const transport = parts.transport ?? createLoggingTransport(logger);
  const service = new BillingService({ db, stripe, clock, logger, settings });

  let running: Promise<void> | null = null;
  let isRerunRequested = false;

  function deliverNotifications(): Promise<void> {
    if (running) {
      isRerunRequested = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRerunRequested = false;
          await deliverPendingNotifications(db, transport, { now: clock.now(), logger });
        } while (isRerunRequested);
      } catch (error) {
        logger.error({ err: error }, "notification delivery run failed; notices stay pending");
      } finally {
        running = null;
      }
    })();
    return running;
  }

  return {
    settings,
    service,
    eventDeps: { clock, logger, settings },
    transport,
    deliverNotifications,
    async idle() {
      while (running) await running;
    },
  };
}
