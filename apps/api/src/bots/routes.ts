import { isTerminalBotStatus } from "@zigznote/database";
import type { ErrorCode } from "@zigznote/shared";
import type { WriteGuards } from "../http/auth";
import { defineRoute, type RouteDefinition } from "../http/route";
import { MeetingIdParams } from "../meetings";
import { createBot, getCurrentBot, removeBot, type BotServiceDeps } from "./botService";
import { BotSchema, CreateBotBody, toBotResponse } from "./schemas";

const tag = "Bots";

/** What a route that calls Recall can answer when that call fails (or Recall is not set up). */
const RECALL_CALL_ERRORS: readonly ErrorCode[] = [
  "RECALL_UNAVAILABLE",
  "RECALL_RATE_LIMITED",
  "RECALL_REJECTED",
  "RECALL_NOT_FOUND",
  "RECALL_BAD_RESPONSE",
  "PROVIDER_NOT_CONFIGURED",
];

/** `/api/v1/meetings/:id/bot`: the meeting's Recall bot. */
export function botRoutes(deps: BotServiceDeps, writeGuards: WriteGuards): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/api/v1/meetings/:id/bot",
      operationId: "createBot",
      tag,
      summary: "Send a recording bot to the meeting (at most one active per meeting and per link)",
      scope: "bots:write",
      write: writeGuards["bot.create"],
      params: MeetingIdParams,
      body: CreateBotBody,
      isBodyOptional: true,
      responses: { 201: { description: "The bot, created at Recall", schema: BotSchema } },
      errors: [
        "NOT_FOUND",
        "BOT_ALREADY_ACTIVE",
        "BOT_ALREADY_ACTIVE_FOR_URL",
        "MEETING_URL_NOT_SUPPORTED",
        "BOT_RESERVATION_LOST",
        ...RECALL_CALL_ERRORS,
      ],
      async handler({ params, body, auth }) {
        const bot = await createBot(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
          botName: body.botName,
        });
        return { status: 201, body: toBotResponse(bot) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/meetings/:id/bot",
      operationId: "getBot",
      tag,
      summary: "The meeting's current bot (the active one, else the latest)",
      scope: "bots:read",
      params: MeetingIdParams,
      responses: { 200: { description: "The bot", schema: BotSchema } },
      errors: ["NOT_FOUND", "BOT_NOT_FOUND"],
      async handler({ params, auth }) {
        const bot = await getCurrentBot(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
        });
        return { status: 200, body: toBotResponse(bot) };
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/meetings/:id/bot",
      operationId: "removeBot",
      tag,
      summary: "Ask the meeting's active bot to leave the call",
      description:
        "202 while the bot is still leaving (it stays active until Recall reports it left), 200 once it has ended " +
        "(a scheduled bot Recall had not dispatched yet is deleted there and ends `failed`). 409 `BOT_NOT_IN_CALL_YET` " +
        "while the bot is joining or in the waiting room: Recall cannot make it leave before it is in the call, so " +
        "nothing changed; retry shortly.",
      scope: "bots:write",
      params: MeetingIdParams,
      responses: {
        200: { description: "The bot has left", schema: BotSchema },
        202: { description: "The bot was asked to leave", schema: BotSchema },
      },
      errors: [
        "NOT_FOUND",
        "BOT_NOT_ACTIVE",
        "BOT_PENDING",
        "BOT_NOT_IN_CALL_YET",
        ...RECALL_CALL_ERRORS,
      ],
      async handler({ params, auth }) {
        const bot = await removeBot(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
        });
        return { status: isTerminalBotStatus(bot.status) ? 200 : 202, body: toBotResponse(bot) };
      },
    }),
  ];
}
