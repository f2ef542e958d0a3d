import type { PrismaClient } from "@zigznote/database";
import { WEBHOOK_PROVIDERS } from "@zigznote/shared";
import type { Redis } from "ioredis";
import { createAdminModule, type AdminJobs, type AdminModule } from "./admin";
import {
  createBillingModule,
  isNoticeObsolete,
  type BillingModule,
  type StripeClient,
} from "./billing";
import {
  createBotsModule,
  createRecallClient,
  createRecallMediaResolver,
  type BotsModule,
  type RecallClient,
} from "./bots";
import type { Config } from "./config";
import type { RouteDefinition, RouteDocumentation, RouteGuards } from "./http/route";
import {
  AUTHENTICATION_CODES,
  createIdentityModule,
  type ClerkAdmin,
  type IdentityModule,
} from "./identity";
import { nextRunOf, runJob, type JobDefinition, type JobRunnerDeps } from "./jobs";
import { systemClock, type Clock } from "./lib/clock";
import { createLogger, type Logger } from "./lib/logger";
import { createMetrics, type Metrics } from "./lib/metrics";
import { createMeetingsModule, type MeetingsModule } from "./meetings";
import {
  createEmailTransport,
  createNotificationsModule,
  EMAIL_TEMPLATES,
  type NotificationTransport,
  type Notices,
  type NotificationsModule,
} from "./notifications";
import {
  createProviderCallsModule,
  type ProviderCalls,
  type ProviderCallsModule,
} from "./providerCalls";
import {
  createRecordingsModule,
  createStorage,
  type RecordingsModule,
  type StorageProvider,
} from "./recordings";
import { healthRoutes } from "./system/health";
import { kernelJobs } from "./system/housekeeping";
import {
  createWebhooksModule,
  type WebhookProcessor,
  type WebhookRegistry,
  type WebhooksModule,
} from "./webhooks";

/** Each feature's module, built once per app (`<feature>/module.ts`). */
export interface AppModules {
  notifications: NotificationsModule;
  providerCalls: ProviderCallsModule;
  billing: BillingModule;
  recordings: RecordingsModule;
  bots: BotsModule;
  meetings: MeetingsModule;
  identity: IdentityModule;
  webhooks: WebhooksModule;
  admin: AdminModule;
}

/** Every documented route of the app, as `app.ts` mounts them (and the document lists them). */
export interface AppRoutes {
  /** What the app's guards add to the document (identity's authentication codes). */
  documentation: RouteDocumentation;
  health: RouteDefinition[];
  webhooks: RouteDefinition[];
  api: RouteDefinition[];
}

/**
 * The composition root. `buildContext` builds each feature's module once from the app's
 * configuration and infrastructure, and collects what they declare: the routes `app.ts` mounts,
 * the one job list (the scheduler, the `job` command and the console run it) and the route
 * guards. `server.ts` makes the production context; tests make their own (test database, a
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
  /** The notification outbox (`modules.notifications`): its after-commit deliveries end at shutdown. */
  notices: Notices;
  /** The webhook processor (`modules.webhooks`): its after-commit tasks end at shutdown. */
  webhooks: WebhookProcessor;
  /** The provider-call queue (`modules.providerCalls`): its after-commit calls end at shutdown. */
  providerCalls: ProviderCalls;
  modules: AppModules;
  routes: AppRoutes;
  /** The app's jobs: every module's, each closed over its own dependencies. */
  jobs: readonly JobDefinition[];
  /** What every declared route is mounted with: authentication and billing's write guard. */
  routeGuards: RouteGuards;
}

/** What a caller may supply; everything else is built from these. */
export type ContextParts = Pick<AppContext, "config" | "db"> &
  Partial<Pick<AppContext, "logger" | "clock" | "metrics" | "redis" | "storage">> & {
    /** Default: the Recall client configured by RECALL_*. */
    recall?: RecallClient;
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
     * Adjusts the app's job list after the modules declared theirs (tests add one that blocks
     * or fails, to watch the runner and the console around it).
     */
    configureJobs?(jobs: readonly JobDefinition[]): readonly JobDefinition[];
    /**
     * Public key (PEM) of `pnpm dev:token`, trusted for session tokens while Clerk is not
     * configured. Only server.ts sets it, in development on the embedded database.
     */
    devSessionPublicKey?: string | null;
  };

/**
 * Sets the failures the alert rules count (deploy/prometheus/alerts.yml) to 0 before the first
 * one: a series that appears at 1 with its first event has no increase() in Prometheus, so an
 * instance's first failed notice, webhook or lockout would otherwise alert nobody.
 */
function zeroAlertedFailures(metrics: Metrics): void {
  for (const type of Object.keys(EMAIL_TEMPLATES)) {
    metrics.notices.inc({ type, outcome: "failed" }, 0);
  }
  for (const provider of WEBHOOK_PROVIDERS) {
    metrics.webhookEvents.inc({ provider, outcome: "failed" }, 0);
  }
  for (const kind of ["pair", "ip"] as const) metrics.apiKeyLockouts.inc({ kind }, 0);
}

/**
 * Builds an app's context with the usual defaults: system clock, a logger at the configured
 * level, a fresh metrics registry, no Redis, the storage STORAGE_DRIVER names, the logging
 * notice transport, Stripe and Recall from the config. Builds nothing that connects.
 */
export function buildContext(parts: ContextParts): AppContext {
  const { config, db } = parts;
  const logger = parts.logger ?? createLogger(config.LOG_LEVEL);
  const clock = parts.clock ?? systemClock;
  const metrics = parts.metrics ?? createMetrics();
  zeroAlertedFailures(metrics);
  const redis = parts.redis ?? null;
  const storage = parts.storage ?? createStorage(config);
  const recall = parts.recall ?? createRecallClient(config, logger);
  const now = () => clock.now();

  // In the order of the features' dependencies: each gets the hooks of those built before it.
  const notifications = createNotificationsModule({
    db,
    clock,
    logger,
    transport:
      parts.transport ??
      createEmailTransport(
        {
          mode: config.EMAIL_TRANSPORT,
          smtpUrl: config.SMTP_URL,
          from: config.EMAIL_FROM,
          appUrl: config.APP_URL,
        },
        logger,
      ),
    isObsolete: isNoticeObsolete,
    onOutcome: (type, outcome) => metrics.notices.inc({ type, outcome }),
    operators: {
      clerkUserIds: config.PLATFORM_ADMIN_USER_IDS,
      emails: config.PLATFORM_ADMIN_EMAILS,
    },
  });
  const { notices } = notifications;
  // Provider calls made after a commit and retried until done: billing and bots register theirs.
  const providerCalls = createProviderCallsModule({
    db,
    clock,
    logger,
    batchSize: config.JOB_BATCH_SIZE,
    concurrency: config.JOB_CONCURRENCY,
  });
  const { calls } = providerCalls;
  const billing = createBillingModule({
    config,
    db,
    clock,
    logger,
    notices,
    stripe: parts.stripe,
    calls,
  });
  const recordings = createRecordingsModule({
    writeGuards: billing.hooks.writeGuards,
    db,
    storage,
    logger,
    now,
    guardWrite: billing.hooks.guardWrite,
    onStorageFreed: billing.hooks.onStorageFreed,
    onStorageStored: billing.hooks.onStorageStored,
    resolveMedia: createRecallMediaResolver(recall),
    metrics,
    afterJob: () => notices.idle(),
    maxBytes: config.RECORDING_MAX_BYTES,
    urlTtlSeconds: config.STORAGE_URL_TTL_SECONDS,
    purgeAfterDays: config.STORAGE_PURGE_AFTER_DAYS,
    batchSize: config.JOB_BATCH_SIZE,
    concurrency: config.JOB_CONCURRENCY,
  });
  const bots = createBotsModule({
    writeGuards: billing.hooks.writeGuards,
    db,
    recall,
    logger,
    clock,
    guardWrite: billing.hooks.guardWrite,
    defaultBotName: config.RECALL_BOT_NAME,
    stuckAfterMinutes: config.STUCK_BOT_AFTER_MINUTES,
    batchSize: config.JOB_BATCH_SIZE,
    concurrency: config.JOB_CONCURRENCY,
    recordingImports: recordings.deps.imports,
    calls,
  });
  const meetings = createMeetingsModule({
    writeGuards: billing.hooks.writeGuards,
    db,
    clock,
    guardWrite: billing.hooks.guardWrite,
    // The deleted meeting's recordings stop counting at once (a storage violation may be
    // resolved), then its bot is sent home.
    async onMeetingDeleted(meeting) {
      await billing.hooks.onMeetingDeleted(meeting.organizationId);
      await bots.hooks.onMeetingDeleted(meeting);
    },
  });
  const identity = createIdentityModule({
    writeGuards: billing.hooks.writeGuards,
    db,
    config,
    logger,
    clock,
    redis,
    violations: billing.deps.settings,
    clerk: parts.clerk,
    devSessionPublicKey: parts.devSessionPublicKey ?? null,
    // A deleted organization is billed no more, records no more calls, and its meetings (with
    // their recordings, purged after STORAGE_PURGE_AFTER_DAYS) go with it.
    async onOrganizationDeleted(tx, organizationId) {
      await billing.hooks.onOrganizationDeleted(tx, organizationId);
      await bots.hooks.onOrganizationDeleted(tx, organizationId);
      await meetings.hooks.onOrganizationDeleted(tx, organizationId);
    },
    lockoutHooks: {
      onFailure: () => metrics.apiKeyFailures.inc(),
      onLockout: (kind) => metrics.apiKeyLockouts.inc({ kind }),
    },
  });
  const webhooks = createWebhooksModule({
    db,
    clock,
    logger,
    events: metrics.webhookEvents,
    lockTimeoutMs: config.WEBHOOK_LOCK_TIMEOUT_MS,
    transactionTimeoutMs: config.WEBHOOK_TRANSACTION_TIMEOUT_MS,
    secrets: {
      stripe: config.STRIPE_WEBHOOK_SECRET,
      clerk: config.CLERK_WEBHOOK_SECRET,
      recall: config.RECALL_WEBHOOK_SECRET,
    },
    bodyLimit: config.WEBHOOK_BODY_LIMIT,
    retentionDays: config.WEBHOOK_RETENTION_DAYS,
    batchSize: config.JOB_BATCH_SIZE,
    handlers: [
      identity.webhookHandlers,
      billing.webhookHandlers,
      bots.webhookHandlers,
      (registry) => parts.configureWebhooks?.(registry),
    ],
  });

  const declaredJobs: readonly JobDefinition[] = [
    ...bots.jobs,
    ...webhooks.jobs,
    ...kernelJobs({ db, batchSize: config.JOB_BATCH_SIZE }),
    ...recordings.jobs,
    ...billing.jobs,
    ...notifications.jobs,
    ...providerCalls.jobs,
  ];
  const jobs = parts.configureJobs?.(declaredJobs) ?? declaredJobs;
  const admin = createAdminModule({
    db,
    clock,
    logger,
    violations: billing.deps.settings,
    notices,
    jobs: adminJobs({ db, logger, clock, metrics }, jobs, config.CRON_TIMEZONE),
  });

  return {
    config,
    db,
    logger,
    clock,
    metrics,
    redis,
    storage,
    notices,
    webhooks: webhooks.processor,
    providerCalls: calls,
    modules: {
      notifications,
      providerCalls,
      billing,
      recordings,
      bots,
      meetings,
      identity,
      webhooks,
      admin,
    },
    routes: {
      documentation: { authenticationCodes: AUTHENTICATION_CODES },
      health: healthRoutes({ db, redis, clock, config, logger, jobs }),
      webhooks: webhooks.routes,
      api: [
        ...identity.routes,
        ...meetings.routes,
        ...bots.routes,
        ...recordings.routes,
        ...billing.routes,
        ...notifications.routes,
        ...admin.routes,
      ],
    },
    jobs,
    routeGuards: {
      authenticate: identity.hooks.authenticate,
    },
  };
}

/** The console's view of the jobs: listed, next runs, and a run now through the runner. */
function adminJobs(
  runner: JobRunnerDeps,
  jobs: readonly JobDefinition[],
  timezone: string,
): AdminJobs {
  const find = (name: string) => jobs.find((candidate) => candidate.name === name);
  return {
    list: () => jobs,
    timezone,
    nextRunAt(name, after) {
      const job = find(name);
      return job ? nextRunOf(job.schedule, timezone, after) : null;
    },
    async run(name, options = {}) {
      const job = find(name);
      if (!job) return null;
      const now = runner.clock.now();
      return runJob(runner, job, {
        scheduledFor: now,
        instanceId: `admin:${process.pid}`,
        onClaimed: options.onClaimed,
      });
    },
  };
}
