import { NotificationStatus, type Notification } from "@zigznote/database";
import { z } from "../http/openapi";

/** Request and response shapes of `/api/v1/notices`. */

export const ListNoticesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
  status: z.enum(NotificationStatus).optional(),
});

export const NoticeSchema = z
  .object({
    id: z.uuid(),
    type: z.string(),
    status: z.enum(NotificationStatus),
    recipientEmail: z.string().nullable(),
    recipientUserId: z.uuid().nullable(),
    attempts: z.number().int(),
    lastError: z.string().nullable().openapi({
      description: "Why the last attempt failed, or why the notice was skipped",
    }),
    payload: z.record(z.string(), z.unknown()),
    createdAt: z.string().openapi({ format: "date-time" }),
    sentAt: z.string().nullable().openapi({ format: "date-time" }),
  })
  .openapi("Notice");

export const NoticeListSchema = z
  .object({ data: z.array(NoticeSchema), nextCursor: z.string().nullable() })
  .openapi("NoticeList");

export type NoticeResponse = z.infer<typeof NoticeSchema>;

/** The public view of an outbox row (no dedupe key or claim). */
export function toNoticeResponse(row: Notification): NoticeResponse {
  const payload = row.payload;
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    recipientEmail: row.recipientEmail,
    recipientUserId: row.recipientUserId,
    attempts: row.attempts,
    lastError: row.lastError,
    payload: payload && typeof payload === "object" && !Array.isArray(payload) ? payload : {},
    createdAt: row.createdAt.toISOString(),
    sentAt: row.sentAt?.toISOString() ?? null,
  };
}
