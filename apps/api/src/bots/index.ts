/**
 * Bots: Recall bots for meetings (at most one active per meeting and per link), their statuses
 * from Recall's webhooks, and the stuck-bot job.
 */
export {
  createBot,
  getCurrentBot,
  releaseBotOfDeletedMeeting,
  removeBot,
  type BotServiceDeps,
} from "./botService";
export { makeBotLeave, syncBotStatus, type LeaveResult } from "./leave";
export { LEAVE_CALL, leaveCallExecutor, queueBotLeaves, type LeaveReason } from "./leaveCalls";
export {
  activeBotSql,
  applyBotStatus,
  isBotStatus,
  type BotStatusDeps,
  isTerminalBotStatus,
  meetingStatusForBot,
  TERMINAL_BOT_STATUSES,
} from "./botStatus";
export {
  createRecallClient,
  createRecallMediaResolver,
  RecallClient,
  RecallRequestError,
  type RecallBot,
} from "./recallClient";
export { registerRecallHandlers, type RecallHandlerDeps } from "./recallWebhooks";
export { botRoutes } from "./routes";
export { cleanupOrphanedBots, type StuckBotDeps } from "./stuckBots";
export { createBotsModule, type BotsModule, type BotsModuleDeps } from "./module";
