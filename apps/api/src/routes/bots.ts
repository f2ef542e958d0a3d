import { Router } from "express";
import type { AppContext } from "../context";
import { requireWriteAccess } from "../middleware/billingGuard";
import { requireScope } from "../middleware/auth";
import { validate, validated } from "../middleware/validate";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import { appServicesFor } from "../services/appServices";
import { createBot, getCurrentBot, removeBot } from "../services/botService";
import { isTerminalBotStatus } from "../services/botStatus";
import { BotSchema, CreateBotBody, MeetingIdParams, toBotResponse } from "./meetings.schemas";

const security = [{ [bearerAuth.name]: [] }];
const botContent = { "application/json": { schema: BotSchema } };

openApiRegistry.registerPath({
  method: "post",
  path: "/api/v1/meetings/{id}/bot",
  summary: "Send a recording bot to the meeting (at most one active per meeting and per link)",
  security,
  request: {
    params: MeetingIdParams,
    body: { required: false, content: { "application/json": { schema: CreateBotBody } } },
  },
  responses: {
    201: { description: "The bot, created at Recall", content: botContent },
    ...errorResponses(400, 401, 402, 403, 404, 409, 429, 502),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/meetings/{id}/bot",
  summary: "The meeting's current bot (the active one, else the latest)",
  security,
  request: { params: MeetingIdParams },
  responses: {
    200: { description: "The bot", content: botContent },
    ...errorResponses(401, 403, 404, 429),
  },
});

openApiRegistry.registerPath({
  method: "delete",
  path: "/api/v1/meetings/{id}/bot",
  summary: "Ask the meeting's active bot to leave the call",
  description:
    "202 while the bot is still leaving (it stays active until Recall reports it left), 200 once it has ended.",
  security,
  request: { params: MeetingIdParams },
  responses: {
    200: { description: "The bot has left", content: botContent },
    202: { description: "The bot was asked to leave", content: botContent },
    ...errorResponses(401, 403, 404, 409, 429, 502),
  },
});

/** `/api/v1/meetings/:id/bot`: the meeting's Recall bot. */
export function createBotsRouter(ctx: AppContext): Router {
  const router = Router({ mergeParams: true });
  const { bots } = appServicesFor(ctx);

  router.post(
    "/",
    requireScope("bots:write"),
    requireWriteAccess(ctx, "bot.create"),
    validate({ params: MeetingIdParams, body: CreateBotBody }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      const body = validated(req, "body", CreateBotBody);
      const bot = await createBot(bots, {
        organizationId: req.auth.organizationId,
        meetingId: id,
        botName: body.botName,
      });
      res.status(201).json(toBotResponse(bot));
    },
  );

  router.get(
    "/",
    requireScope("bots:read"),
    validate({ params: MeetingIdParams }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      res.json(toBotResponse(await getCurrentBot(ctx.db, req.auth.organizationId, id)));
    },
  );

  router.delete(
    "/",
    requireScope("bots:write"),
    validate({ params: MeetingIdParams }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      const bot = await removeBot(bots, { organizationId: req.auth.organizationId, meetingId: id });
      res.status(isTerminalBotStatus(bot.status) ? 200 : 202).json(toBotResponse(bot));
    },
  );

  return router;
}
