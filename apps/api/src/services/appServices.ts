import type { AppContext } from "../context";
import type { BotServiceDeps } from "./botService";
import { createRecallClient, createRecallMediaResolver, type RecallClient } from "./recallService";
import type { RecordingImportDeps } from "./recordingImportService";
import type { RecordingDeletionDeps } from "./recordingService";

/**
 * The service dependencies of one app, built once from its context and shared by its routers
 * and its webhook handlers (which only receive the context). Keyed by the context, so apps
 * built side by side in tests never share a Recall client.
 */
export interface AppServices {
  recall: RecallClient;
  bots: BotServiceDeps;
  /** Also what deletion needs: it re-checks the plan's storage limit. */
  recordings: RecordingDeletionDeps;
  recordingImports: RecordingImportDeps;
}

const built = new WeakMap<AppContext, AppServices>();

/** This app's Recall client and service dependencies (built on first use). */
export function appServicesFor(ctx: AppContext): AppServices {
  const existing = built.get(ctx);
  if (existing) return existing;
  const recall = createRecallClient(ctx.config, ctx.logger);
  const recordings: RecordingDeletionDeps = {
    db: ctx.db,
    storage: ctx.storage,
    logger: ctx.logger,
    clock: ctx.clock,
    billing: ctx.billing,
  };
  const services: AppServices = {
    recall,
    bots: {
      db: ctx.db,
      recall,
      logger: ctx.logger,
      clock: ctx.clock,
      defaultBotName: ctx.config.RECALL_BOT_NAME,
    },
    recordings,
    recordingImports: {
      ...recordings,
      now: () => ctx.clock.now(),
      resolveMedia: createRecallMediaResolver(recall),
      maxBytes: ctx.config.RECORDING_MAX_BYTES,
    },
  };
  built.set(ctx, services);
  return services;
}
