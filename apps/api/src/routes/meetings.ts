import { Router } from "express";
import type { AppContext } from "../context";
import { requireWriteAccess } from "../middleware/billingGuard";
import { requireScope } from "../middleware/auth";
import { validate, validated } from "../middleware/validate";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import { appServicesFor } from "../services/appServices";
import { deleteMeeting } from "../services/botService";
import { createMeeting, getMeeting, listMeetings, updateMeeting } from "../services/meetingService";
import { createBotsRouter } from "./bots";
import {
  CreateMeetingBody,
  ListMeetingsQuery,
  MeetingIdParams,
  MeetingListSchema,
  MeetingSchema,
  toMeetingResponse,
  UpdateMeetingBody,
} from "./meetings.schemas";
import { createRecordingsRouter } from "./recordings";

const security = [{ [bearerAuth.name]: [] }];
const json = (schema: typeof MeetingSchema | typeof MeetingListSchema) => ({
  "application/json": { schema },
});

openApiRegistry.registerPath({
  method: "post",
  path: "/api/v1/meetings",
  summary: "Create a meeting (Zoom, Google Meet, Microsoft Teams or Webex link)",
  security,
  request: { body: { content: { "application/json": { schema: CreateMeetingBody } } } },
  responses: {
    201: { description: "Created", content: json(MeetingSchema) },
    ...errorResponses(400, 401, 402, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/meetings",
  summary: "List the organization's meetings, newest first (cursor pagination)",
  security,
  request: { query: ListMeetingsQuery },
  responses: {
    200: { description: "A page of meetings", content: json(MeetingListSchema) },
    ...errorResponses(400, 401, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/meetings/{id}",
  summary: "Get a meeting",
  security,
  request: { params: MeetingIdParams },
  responses: {
    200: { description: "The meeting", content: json(MeetingSchema) },
    ...errorResponses(401, 403, 404, 429),
  },
});

openApiRegistry.registerPath({
  method: "patch",
  path: "/api/v1/meetings/{id}",
  summary: "Update a meeting's title, times or link (not the link while a bot is in the call)",
  security,
  request: {
    params: MeetingIdParams,
    body: { content: { "application/json": { schema: UpdateMeetingBody } } },
  },
  responses: {
    200: { description: "The updated meeting", content: json(MeetingSchema) },
    ...errorResponses(400, 401, 402, 403, 404, 409, 429),
  },
});

openApiRegistry.registerPath({
  method: "delete",
  path: "/api/v1/meetings/{id}",
  summary: "Delete a meeting (soft delete; an active bot is asked to leave the call)",
  security,
  request: { params: MeetingIdParams },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses(401, 403, 404, 429),
  },
});

/**
 * `/api/v1/meetings`, with the meeting's bot (`/:id/bot`) and recording (`/:id/recording`)
 * routers below it, so one `auth` covers them all. Everything is scoped to `req.auth`'s
 * organization: another organization's meeting is a 404, like an unknown id.
 */
export function createMeetingsRouter(ctx: AppContext): Router {
  const router = Router();
  const services = appServicesFor(ctx);
  const read = requireScope("meetings:read");
  const write = requireScope("meetings:write");

  router.post(
    "/",
    write,
    requireWriteAccess(ctx, "meeting.create"),
    validate({ body: CreateMeetingBody }),
    async (req, res) => {
      const body = validated(req, "body", CreateMeetingBody);
      const meeting = await createMeeting(ctx.db, {
        organizationId: req.auth.organizationId,
        createdById: req.auth.userId,
        title: body.title,
        meetingUrl: body.meetingUrl,
        startTime: body.startTime ?? null,
        endTime: body.endTime ?? null,
      });
      res.status(201).json(toMeetingResponse(meeting));
    },
  );

  router.get("/", read, validate({ query: ListMeetingsQuery }), async (req, res) => {
    const query = validated(req, "query", ListMeetingsQuery);
    const page = await listMeetings(ctx.db, {
      organizationId: req.auth.organizationId,
      limit: query.limit,
      cursor: query.cursor,
      status: query.status,
    });
    res.json({ data: page.items.map(toMeetingResponse), nextCursor: page.nextCursor });
  });

  router.get("/:id", read, validate({ params: MeetingIdParams }), async (req, res) => {
    const { id } = validated(req, "params", MeetingIdParams);
    res.json(toMeetingResponse(await getMeeting(ctx.db, req.auth.organizationId, id)));
  });

  router.patch(
    "/:id",
    write,
    requireWriteAccess(ctx, "write"),
    validate({ params: MeetingIdParams, body: UpdateMeetingBody }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      const patch = validated(req, "body", UpdateMeetingBody);
      const meeting = await updateMeeting(ctx.db, req.auth.organizationId, id, patch);
      res.json(toMeetingResponse(meeting));
    },
  );

  router.delete("/:id", write, validate({ params: MeetingIdParams }), async (req, res) => {
    const { id } = validated(req, "params", MeetingIdParams);
    // The meeting disappears at once; its active bot, if any, is asked to leave (best effort:
    // if Recall is down the bot stays tracked and its own webhooks still end it).
    await deleteMeeting(services.bots, { organizationId: req.auth.organizationId, meetingId: id });
    res.status(204).end();
  });

  router.use("/:id/bot", createBotsRouter(ctx));
  router.use("/:id/recording", createRecordingsRouter(ctx));
  return router;
}
