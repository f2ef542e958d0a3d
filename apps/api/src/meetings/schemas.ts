import { MeetingPlatform, MeetingStatus, type Meeting } from "@zigznote/database";
import { z } from "../http/openapi";

/**
 * Request and response shapes of `/api/v1/meetings`. The meeting link
 * is only checked to be a string here: `normalizeMeetingUrl` in the service is the one authority
 * on what a supported link is, and its ValidationError has the same shape as a zod one.
 */

/**
 * An ISO date-time with its offset, parsed to a Date. The document describes the string before
 * the transform; an `.openapi({ type })` on the transform would replace the whole schema and hide
 * a `.nullable()` added to it (PATCH's startTime and endTime accept null).
 */
function isoDateTime(example: string, description: string) {
  return z.iso
    .datetime({ offset: true })
    .openapi({ example, description })
    .transform((value) => new Date(value));
}

const START_EXAMPLE = "2026-11-30T15:00:00Z";
const END_EXAMPLE = "2026-11-30T15:45:00Z";
const startTime = isoDateTime(START_EXAMPLE, "When the call starts (ISO 8601 with an offset)");
const endTime = isoDateTime(
  END_EXAMPLE,
  "When the call ends: after startTime, or 400 VALIDATION_ERROR (also when an update changes " +
    "only one of the two and the stored other one is not in order with it)",
);

const title = z.string().trim().min(1, "title must not be empty").max(200);
const meetingUrl = z
  .string()
  .trim()
  .min(1, "meetingUrl must not be empty")
  .max(2048)
  .openapi({ example: "https://us02web.zoom.us/j/85012345678?pwd=abc" });

export const MeetingIdParams = z.object({
  id: z.uuid().openapi({ param: { name: "id", in: "path" } }),
});

export const CreateMeetingBody = z
  .object({
    title,
    meetingUrl,
    startTime: startTime.optional(),
    endTime: endTime.optional(),
  })
  .strict()
  .openapi("CreateMeeting", {
    example: {
      title: "Weekly sync",
      meetingUrl: "https://us02web.zoom.us/j/85012345678?pwd=abc",
      startTime: START_EXAMPLE,
      endTime: END_EXAMPLE,
    },
  });

export const UpdateMeetingBody = z
  .object({
    title: title.optional(),
    meetingUrl: meetingUrl.optional(),
    startTime: startTime.nullable().optional(),
    endTime: endTime.nullable().optional(),
  })
  .strict()
  .refine((body) => Object.keys(body).length > 0, { message: "Nothing to update" })
  .openapi("UpdateMeeting", {
    example: { title: "Weekly sync (moved)", endTime: "2026-11-30T16:00:00Z" },
  });

export const ListMeetingsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
  status: z.enum(MeetingStatus).optional(),
});

export const MeetingSchema = z
  .object({
    id: z.uuid(),
    title: z.string(),
    meetingUrl: z.string(),
    platform: z.enum(MeetingPlatform),
    status: z.enum(MeetingStatus),
    startTime: z.string().nullable().openapi({ format: "date-time" }),
    endTime: z.string().nullable().openapi({ format: "date-time" }),
    createdAt: z.string().openapi({ format: "date-time" }),
    updatedAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Meeting");

export const MeetingListSchema = z
  .object({
    data: z.array(MeetingSchema),
    nextCursor: z.string().nullable(),
  })
  .openapi("MeetingList");

export type MeetingResponse = z.infer<typeof MeetingSchema>;

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

/** The public view of a meeting: no organization, normalized link or deletion columns. */
export function toMeetingResponse(meeting: Meeting): MeetingResponse {
  return {
    id: meeting.id,
    title: meeting.title,
    meetingUrl: meeting.meetingUrl,
    platform: meeting.platform,
    status: meeting.status,
    startTime: iso(meeting.startTime),
    endTime: iso(meeting.endTime),
    createdAt: meeting.createdAt.toISOString(),
    updatedAt: meeting.updatedAt.toISOString(),
  };
}
