import { Prisma, type BotStatus } from "../generated/client";

/**
 * Statuses after which a bot is no longer active: the complement of the predicate of the partial
 * unique indexes `bots_one_active_per_meeting` / `bots_one_active_per_org_url` (init migration).
 * A bot in one of these no longer blocks a new bot for the meeting or URL. Kept here, beside the
 * schema, so every feature that asks "is there an active bot?" asks it the same way.
 */
export const TERMINAL_BOT_STATUSES: readonly BotStatus[] = Object.freeze([
  "call_ended",
  "done",
  "fatal",
  "media_expired",
  "analysis_done",
  "analysis_failed",
  "failed",
]);

/** True once the bot no longer counts as active. */
export function isTerminalBotStatus(status: BotStatus): boolean {
  return TERMINAL_BOT_STATUSES.includes(status);
}

/** SQL fragment: the bot is active (the partial unique indexes' predicate). */
export const activeBotSql = Prisma.sql`status NOT IN (${Prisma.join(
  TERMINAL_BOT_STATUSES.map((status) => Prisma.sql`${status}::"BotStatus"`),
)})`;
