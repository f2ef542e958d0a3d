import type { WriteGuards } from "../http/auth";
import type { Db, Meeting } from "@zigznote/database";
import type { RouteDefinition } from "../http/route";
import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";
import type { ProviderCalls } from "../providerCalls";
import type { RecordingImportDeps } from "../recordings";
import type { RegisterWebhookHandlers } from "../webhooks";
import { releaseBotOfDeletedMeeting, type BotServiceDeps } from "./botService";
import { LEAVE_CALL, leaveCallExecutor } from "./leaveCalls";
import { queueOrganizationBotLeaves } from "./organizationDeletion";
import { registerRecallHandlers } from "./recallWebhooks";
import { botRoutes } from "./routes";
import { cleanupOrphanedBots, type StuckBotDeps } from "./stuckBots";

export interface BotsModuleDeps extends BotServiceDeps {
  /** Billing's guards of the write actions, with the codes they answer (routes declare them). */
  writeGuards: WriteGuards;
  /** STUCK_BOT_AFTER_MINUTES, JOB_BATCH_SIZE, JOB_CONCURRENCY. */
  stuckAfterMinutes: number;
  batchSize: number;
  concurrency: number;
  /** Where Recall's "recording done" events queue the copy of the media. */
  recordingImports: RecordingImportDeps;
  /** The app's provider-call queue: a deleted organization's bots are sent home there. */
  calls: ProviderCalls;
}

export interface BotsModule {
  routes: RouteDefinition[];
  jobs: JobDefinition[];
  webhookHandlers: RegisterWebhookHandlers;
  hooks: {
    /** A deleted meeting's active bot: its leave is queued (made at once, retried until done). */
    onMeetingDeleted: (meeting: Meeting) => Promise<void>;
    /**
     * In the transaction that records an organization's deletion: queues a leave call for each
     * of its active bots (made after the commit, retried until done).
     */
    onOrganizationDeleted: (db: Db, organizationId: string) => Promise<void>;
  };
  /** What the bot service and the stuck-bot job were built with (tools and tests call them). */
  deps: { bots: BotServiceDeps; stuckBots: StuckBotDeps };
}

/** Bots as one app uses them: the routes, Recall's webhook handlers and the stuck-bot job. */
export function createBotsModule(deps: BotsModuleDeps): BotsModule {
  const { db, recall, logger, clock } = deps;
  const bots: BotServiceDeps = {
    db,
    recall,
    logger,
    clock,
    guardWrite: deps.guardWrite,
    defaultBotName: deps.defaultBotName,
  };
  const stuckBots: StuckBotDeps = {
    db,
    logger,
    recall,
    calls: deps.calls,
    stuckAfterMinutes: deps.stuckAfterMinutes,
    batchSize: deps.batchSize,
    concurrency: deps.concurrency,
  };
  deps.calls.register(LEAVE_CALL, leaveCallExecutor(bots));
  return {
    deps: { bots, stuckBots },
    routes: botRoutes(bots, deps.writeGuards),
    webhookHandlers: (registry) =>
      registerRecallHandlers(registry, {
        db,
        logger,
        recall,
        clock,
        calls: deps.calls,
        recordingImports: deps.recordingImports,
      }),
    hooks: {
      async onMeetingDeleted(meeting) {
        // The meeting is deleted: a failure here is logged, and the bot's next active status
        // webhook queues the leave (recallWebhooks.ts).
        await releaseBotOfDeletedMeeting({ db, calls: deps.calls }, meeting).catch(
          (error: unknown) => {
            logger.error(
              { err: error, meetingId: meeting.id },
              "could not queue the leave of a deleted meeting's bot",
            );
          },
        );
      },
      async onOrganizationDeleted(tx, organizationId) {
        await queueOrganizationBotLeaves({ db: tx, calls: deps.calls }, { organizationId });
      },
    },
    jobs: [
      {
        name: "cleanupOrphanedBots",
        schedule: "*/5 * * * *",
        leaseMs: 15 * MINUTE_MS,
        description: "End bots stuck without a status change (checked with Recall first)",
        run: ({ now }) => cleanupOrphanedBots(stuckBots, { now }),
      },
    ],
  };
}
