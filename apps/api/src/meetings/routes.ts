import type { Page } from "@zigznote/shared";
import type { Meeting } from "@zigznote/database";
import type { WriteGuards } from "../http/auth";
import { defineRoute, LOCATION_HEADER, type RouteDefinition } from "../http/route";
import {
  createMeeting,
  deleteMeeting,
  getMeeting,
  listMeetings,
  updateMeeting,
  type MeetingDeps,
} from "./meetingService";
import {
  CreateMeetingBody,
  ListMeetingsQuery,
  MeetingIdParams,
  MeetingListSchema,
  MeetingSchema,
  type MeetingResponse,
  toMeetingResponse,
  UpdateMeetingBody,
} from "./schemas";

const tag = "Meetings";

/**
 * `/api/v1/meetings`. Everything is scoped to the caller's organization: another
 * organization's meeting is a 404, like an unknown id.
 */
export function meetingRoutes(deps: MeetingDeps, writeGuards: WriteGuards): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/api/v1/meetings",
      operationId: "createMeeting",
      tag,
      summary: "Create a meeting (Zoom, Google Meet, Microsoft Teams or Webex link)",
      description:
        "`startTime` and `endTime` are optional; when both are given, `endTime` must be after " +
        "`startTime` (400 `VALIDATION_ERROR` naming `endTime` otherwise).",
      scope: "meetings:write",
      write: writeGuards["meeting.create"],
      body: CreateMeetingBody,
      responses: {
        201: {
          description: "Created",
          schema: MeetingSchema,
          headers: { Location: LOCATION_HEADER },
        },
      },
      claimsKeyInTransaction: true,
      async handler({ body, auth, idempotency }) {
        const created = (meeting: Meeting) => ({
          status: 201 as const,
          body: toMeetingResponse(meeting),
          headers: { Location: `/api/v1/meetings/${meeting.id}` },
        });
        const meeting = await createMeeting(
          deps,
          {
            organizationId: auth.organizationId,
            createdById: auth.userId,
            title: body.title,
            meetingUrl: body.meetingUrl,
            startTime: body.startTime ?? null,
            endTime: body.endTime ?? null,
          },
          idempotency.recordInTransaction(created),
        );
        return created(meeting);
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/meetings",
      operationId: "listMeetings",
      tag,
      summary: "List the organization's meetings, newest first (cursor pagination)",
      scope: "meetings:read",
      query: ListMeetingsQuery,
      responses: { 200: { description: "A page of meetings", schema: MeetingListSchema } },
      errors: ["INVALID_CURSOR"],
      async handler({ query, auth }) {
        const page = await listMeetings(deps, {
          organizationId: auth.organizationId,
          limit: query.limit,
          cursor: query.cursor,
          status: query.status,
        });
        const body: Page<MeetingResponse> = {
          data: page.items.map(toMeetingResponse),
          nextCursor: page.nextCursor,
        };
        return { status: 200, body };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/meetings/:id",
      operationId: "getMeeting",
      tag,
      summary: "Get a meeting",
      scope: "meetings:read",
      params: MeetingIdParams,
      responses: { 200: { description: "The meeting", schema: MeetingSchema } },
      errors: ["NOT_FOUND"],
      async handler({ params, auth }) {
        const meeting = await getMeeting(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
        });
        return { status: 200, body: toMeetingResponse(meeting) };
      },
    }),

    defineRoute({
      method: "patch",
      path: "/api/v1/meetings/:id",
      operationId: "updateMeeting",
      tag,
      summary: "Update a meeting's title, times or link (not the link while a bot is in the call)",
      description:
        "Send only what changes; `null` clears a time. The times after the update must be in " +
        "order (`endTime` after `startTime`), each the new value or the stored one: changing " +
        "only `startTime` to after the stored `endTime` is 400 `VALIDATION_ERROR` naming " +
        "`startTime`, and nothing is written. 409 `CONFLICT` when another update moved the times " +
        "at the same moment (retry).",
      scope: "meetings:write",
      write: writeGuards["write"],
      params: MeetingIdParams,
      body: UpdateMeetingBody,
      responses: { 200: { description: "The updated meeting", schema: MeetingSchema } },
      errors: ["NOT_FOUND", "MEETING_HAS_ACTIVE_BOT", "CONFLICT"],
      async handler({ params, body, auth, idempotency }) {
        const updated = (meeting: Meeting) => ({
          status: 200 as const,
          body: toMeetingResponse(meeting),
        });
        const meeting = await updateMeeting(
          deps,
          { organizationId: auth.organizationId, meetingId: params.id, patch: body },
          idempotency.recordInTransaction(updated),
        );
        return updated(meeting);
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/meetings/:id",
      operationId: "deleteMeeting",
      tag,
      summary: "Delete a meeting (soft delete; an active bot is asked to leave the call)",
      scope: "meetings:write",
      params: MeetingIdParams,
      responses: { 204: { description: "Deleted" } },
      errors: ["NOT_FOUND"],
      async handler({ params, auth, idempotency }) {
        // The meeting disappears at once; its active bot, if any, is asked to leave (best
        // effort: if Recall is down the bot stays tracked and its own webhooks still end it).
        await deleteMeeting(
          deps,
          { organizationId: auth.organizationId, meetingId: params.id },
          idempotency.recordInTransaction(() => ({ status: 204 })),
        );
        return { status: 204 };
      },
    }),
  ];
}
