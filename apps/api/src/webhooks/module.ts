import type { RouteDefinition } from "../http/route";
import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";
import { cleanupOldWebhooks } from "./idempotency";
import {
  createWebhookProcessor,
  type WebhookProcessor,
  type WebhookProcessorDeps,
} from "./processor";
import { WebhookRegistry } from "./registry";
import { webhookRoutes, type WebhookRouteDeps } from "./routes";

/** How a feature adds its handlers to the app's registry (its module's `webhookHandlers`). */
export type RegisterWebhookHandlers = (registry: WebhookRegistry) => void;

export interface WebhooksModuleDeps
  extends WebhookProcessorDeps, Omit<WebhookRouteDeps, "processor"> {
  /** Processed-event records older than this many days are deleted (WEBHOOK_RETENTION_DAYS). */
  retentionDays: number;
  batchSize: number;
  /** Each feature's handlers, registered in this order. */
  handlers: readonly RegisterWebhookHandlers[];
}

export interface WebhooksModule {
  routes: RouteDefinition[];
  jobs: JobDefinition[];
  /** The handlers the processor dispatches to (every provider's). */
  registry: WebhookRegistry;
  /** Applies each verified event exactly once. */
  processor: WebhookProcessor;
}

/**
 * The signed webhook routes of one app, with the registry filled by the features' handlers
 * (webhooks use no feature: the composition root hands the registrations in).
 */
export function createWebhooksModule(deps: WebhooksModuleDeps): WebhooksModule {
  const registry = new WebhookRegistry();
  for (const register of deps.handlers) register(registry);
  const processor = createWebhookProcessor(deps, registry);
  return {
    registry,
    processor,
    routes: webhookRoutes({ ...deps, processor }),
    jobs: [
      {
        name: "cleanupOldWebhooks",
        schedule: "0 3 * * *",
        leaseMs: 60 * MINUTE_MS,
        description: "Delete processed-webhook records older than WEBHOOK_RETENTION_DAYS",
        run: async ({ now }) => ({
          rowsAffected: await cleanupOldWebhooks(deps.db, deps.retentionDays, now, deps.batchSize),
        }),
      },
    ],
  };
}
