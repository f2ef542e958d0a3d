import type { Db, PrismaClient } from "@zigznote/database";
import type { Redis } from "ioredis";
import {
  assertCanWrite,
  createWriteGuards,
  assertNoOpenDispute,
  checkPlanViolations,
  createAppBilling,
  guardWrite,
  isNoticeObsolete,
  registerStripeHandlers,
  type AppBilling,
} from "./billing";
import type { StripeClient } from "./billing";
import {
  createRecallClient,
  createRecallMediaResolver,
  registerRecallHandlers,
  releaseBotOfDeletedMeeting,
  type BotServiceDeps,
  type RecallClient,
  type StuckBotDeps,
} from "./bots";
import type { Config } from "./config";
import type { WriteAction, WriteGuard, WriteGuards } from "./http/auth";
import type { RouteGuards } from "./http/route";
import {
  ApiKeyCache,
  authenticate,
  createApiKeyLockout,
  createClerkAdmin,
  registerClerkHandlers,
  type ApiKeyLockout,
  type ClerkAdmin,
  type MemberDeps,
} from "./identity";
import { systemClock, type Clock } from "./lib/clock";
import { createLogger, type Logger } from "./lib/logger";
import { createMetrics, type Metrics } from "./lib/metrics";
import type { MeetingDeps } from "./meetings";
import {
  createEmailTransport,
  createNotices,
  type NotificationTransport,
  type Notices,
} from "./notifications";
import {
  createStorage,
  type AbandonedUploadsDeps,
  type RecordingImportDeps,
  type RecordingRouteDeps,
  type StoragePurgeDeps,
  type StorageProvider,
} from "./recordings";
import { createWebhookProcessor, WebhookRegistry, type WebhookProcessor } from "./webhooks";

/**
 * The composition root. `buildContext` builds every service of one app once, typed, from its
 * configuration and infrastructure; routes, webhook handlers and jobs receive what they need
 * from here. `server.ts` makes the production context; tests make their own (test database, a
 * manual clock, local provider servers) and can run several side by side.
 */
export interface AppContext {
  config: Config;
  db: PrismaClient;
  logger: Logger;
  clock: Clock;
  metrics: Metrics;
  /** Shared Redis when REDIS_URL is set; null means single-instance, in-memory fallbacks. */
  redis: Redis | null;
  /** Where recordings are kept: STORAGE_DRIVER (local disk under STORAGE_DIR by default, or S3). */
  storage: StorageProvider;
  /** The notification outbox: queue in a transaction, delivered after the commit. */
  notices: Notices;
  /** Billing service and the Stripe handlers' dependencies. */
  billing: AppBilling;
  recall: RecallClient;
  identity: {
    /** One cache of verified keys: the revoke route drops exactly the copies auth reads. */
    apiKeyCache: ApiKeyCache;
    /** One set of lockout counters per app. */
    lockout: ApiKeyLockout;
    /** Adding members at Clerk (`POST /api/v1/members`). */
    members: MemberDeps;
  };
  meetings: MeetingDeps;
  bots: BotServiceDeps;
  stuckBots: StuckBotDeps;
  recordings: RecordingRouteDeps;
  recordingImports: RecordingImportDeps;
  storagePurge: StoragePurgeDeps;
  abandonedUploads: AbandonedUploadsDeps;
  /** The registry the webhook processor dispatches to (every provider's handlers). */
  webhookRegistry: WebhookRegistry;
  /** Applies each verified webhook event exactly once. */
  webhooks: WebhookProcessor;
  /**
   * What every declared route is mounted with (authentication), and billing's early check of a
   * write, which its route guards (`writeGuards`) run.
   */
  routeGuards: RouteGuards & {
    assertCanWrite(organizationId: string, action: WriteAction): Promise<void>;
  };
  /** Billing's guards of the write actions, with their codes: what routes declare as `write:`. */
  writeGuards: WriteGuards;
}

/** What a caller may supply; everything else is built from these. */
export type ContextParts = Pick<AppContext, "config" | "db"> &
  Partial<Pick<AppContext, "logger" | "clock" | "metrics" | "redis" | "storage" | "recall">> & {
    /** Default: e-mail as EMAIL_TRANSPORT says (rendered into the log, or SMTP). */
    transport?: NotificationTransport;
    /** Default: the SDK client configured by STRIPE_* (null without STRIPE_SECRET_KEY). */
    stripe?: StripeClient | null;
    /** Default: Clerk's Backend API from CLERK_* (null without CLERK_SECRET_KEY). */
    clerk?: ClerkAdmin | null;
    /**
     * Adjusts the webhook handlers after the defaults are registered (tests wrap one to make it
     * fail, say).
     */
    configureWebhooks?(registry: WebhookRegistry): void;
    /**
     * Public key (PEM) of `pnpm dev:token`, trusted for session tokens while Clerk is not
     * configured. Only server.ts sets it, in development on the embedded database.
     */
    devSessionPublicKey?: string | null;
  };

/**
 * Builds an app's context with the usual defaults: system clock, a logger at the configured
 * level, a fresh metrics registry, no Redis, the storage STORAGE_DRIVER names, the logging
 * notice transport, Stripe and Recall from the config.
 */
export function buildContext(parts: ContextParts): AppContext {
  const { config, db } = parts;
  const logger = parts.logger ?? createLogger(config.LOG_LEVEL);
  const clock = parts.clock ?? systemClock;
  const metrics = parts.metrics ?? createMetrics();
  const redis = parts.redis ?? null;
  const storage = parts.storage ?? createStorage(config);
  const recall = parts.recall ?? createRecallClient(config, logger);

  const transport =
    parts.transport ??
    createEmailTransport(
      {
        mode: config.EMAIL_TRANSPORT,
        smtpUrl: config.SMTP_URL,
        from: config.EMAIL_FROM,
        appUrl: config.APP_URL,
      },
      logger,
    );
  const notices = createNotices({
    db,
    clock,
    logger,
    transport,
    isObsolete: isNoticeObsolete,
    onOutcome: (type, outcome) => metrics.notices.inc({ type, outcome }),
    operators: {
      clerkUserIds: config.PLATFORM_ADMIN_USER_IDS,
      emails: config.PLATFORM_ADMIN_EMAILS,
    },
  });
  const billing = createAppBilling({ config, db, clock, logger, notices, stripe: parts.stripe });
  const violations = billing.settings;
  // Billing decides creates in their own transactions (exact limits under concurrency); an open
  // dispute restricts only where the deployment chose so (DISPUTE_READ_ONLY).
  const assertCanWriteNow = async (organizationId: string, action: WriteAction) => {
    await assertCanWrite({ db }, { organizationId, action, now: clock.now() });
    // An open dispute restricts only where the deployment chose so (DISPUTE_READ_ONLY).
    if (billing.settings.isDisputeReadOnly) await assertNoOpenDispute({ db }, { organizationId });
  };
  const guard: WriteGuard = async (tx, input) => {
    await guardWrite(tx, { ...input, now: input.now ?? clock.now() });
    if (billing.settings.isDisputeReadOnly) await assertNoOpenDispute({ db: tx }, input);
  };

  const bots: BotServiceDeps = {
    db,
    recall,
    logger,
    clock,
    guardWrite: guard,
    defaultBotName: config.RECALL_BOT_NAME,
  };
  // Freed storage may resolve a storage violation: billing re-checks it where the rows go.
  const onStorageFreed = async (tx: Db, organizationId: string) => {
    await checkPlanViolations(
      { db: tx, settings: violations },
      { organizationId, now: clock.now() },
    );
  };
  const recordings: RecordingRouteDeps = {
    db,
    storage,
    logger,
    guardWrite: guard,
    onStorageFreed,
    now: () => clock.now(),
    maxBytes: config.RECORDING_MAX_BYTES,
    urlTtlSeconds: config.STORAGE_URL_TTL_SECONDS,
  };
  const recordingImports: RecordingImportDeps = {
    db,
    storage,
    logger,
    now: () => clock.now(),
    resolveMedia: createRecallMediaResolver(recall),
    maxBytes: config.RECORDING_MAX_BYTES,
  };

  const identityDeps = { db, config, logger, clock, redis };
  const apiKeyCache = new ApiKeyCache(identityDeps);
  const lockout = createApiKeyLockout(identityDeps, {
    onFailure: () => metrics.apiKeyFailures.inc(),
    onLockout: (kind) => metrics.apiKeyLockouts.inc({ kind }),
  });

  const webhookRegistry = new WebhookRegistry();
  registerClerkHandlers(webhookRegistry, { clock, violations });
  registerStripeHandlers(webhookRegistry, billing.eventDeps);
  registerRecallHandlers(webhookRegistry, { logger, recall, recordingImports });
  parts.configureWebhooks?.(webhookRegistry);

  return {
    config,
    db,
    logger,
    clock,
    metrics,
    redis,
    storage,
    notices,
    billing,
    recall,
    identity: {
      apiKeyCache,
      lockout,
      members: {
        db,
        clock,
        logger,
        clerk: parts.clerk === undefined ? createClerkAdmin(config) : parts.clerk,
      },
    },
    meetings: {
      db,
      clock,
      guardWrite: guard,
      onMeetingDeleted: (meeting) => releaseBotOfDeletedMeeting(bots, meeting),
    },
    bots,
    stuckBots: {
      db,
      logger,
      recall,
      stuckAfterMinutes: config.STUCK_BOT_AFTER_MINUTES,
      batchSize: config.JOB_BATCH_SIZE,
      concurrency: config.JOB_CONCURRENCY,
    },
    recordings,
    recordingImports,
    storagePurge: {
      db,
      storage,
      logger,
      purgeAfterDays: config.STORAGE_PURGE_AFTER_DAYS,
      batchSize: config.JOB_BATCH_SIZE,
      onStorageFreed,
    },
    abandonedUploads: { db, storage, logger, batchSize: config.JOB_BATCH_SIZE },
    webhookRegistry,
    webhooks: createWebhookProcessor(
      {
        db,
        logger,
        events: metrics.webhookEvents,
        lockTimeoutMs: config.WEBHOOK_LOCK_TIMEOUT_MS,
        transactionTimeoutMs: config.WEBHOOK_TRANSACTION_TIMEOUT_MS,
      },
      webhookRegistry,
    ),
    routeGuards: {
      authenticate: authenticate(identityDeps, {
        apiKeyCache,
        lockout,
        devSessionPublicKey: parts.devSessionPublicKey ?? null,
      }),
      assertCanWrite: assertCanWriteNow,
    },
    writeGuards: createWriteGuards(assertCanWriteNow),
  };
}
