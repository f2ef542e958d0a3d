import { BotStatus, type Bot } from "@zigznote/database";
import { z } from "../http/openapi";

/** Request and response shapes of `/api/v1/meetings/:id/bot`. */

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

export const CreateBotBody = z
  .object({
    botName: z.string().trim().min(1).max(100).optional(),
  })
  .strict()
  .openapi("CreateBot");

export const BotSchema = z
  .object({
    id: z.uuid(),
    meetingId: z.uuid(),
    botName: z.string(),
    status: z.enum(BotStatus),
    subCode: z.string().nullable(),
    terminalReason: z.string().nullable(),
    lastStatusAt: z.string().openapi({ format: "date-time" }),
    endedAt: z.string().nullable().openapi({ format: "date-time" }),
    createdAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Bot");

export type BotResponse = z.infer<typeof BotSchema>;

/** The public view of a bot: no Recall id, organization, link copy or raw history. */
export function toBotResponse(bot: Bot): BotResponse {
  return {
    id: bot.id,
    meetingId: bot.meetingId,
    botName: bot.botName,
    status: bot.status,
    subCode: bot.subCode,
    terminalReason: bot.terminalReason,
    lastStatusAt: bot.lastStatusAt.toISOString(),
    endedAt: iso(bot.endedAt),
    createdAt: bot.createdAt.toISOString(),
  };
}
