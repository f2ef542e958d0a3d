import type { NotificationStatus, PrismaClient } from "@zigznote/database";
import { ValidationError } from "@zigznote/shared";
import { defineRoute, type RouteDefinition } from "../http/route";
import { ListNoticesQuery, NoticeListSchema, toNoticeResponse } from "./schemas";
import * as store from "./store";

export interface NoticeRouteDeps {
  db: PrismaClient;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function invalidCursor(): ValidationError {
  return new ValidationError("Invalid cursor: pass back a nextCursor exactly as received", {
    code: "INVALID_CURSOR",
    fields: [{ path: "cursor", message: "Invalid cursor", code: "invalid_cursor" }],
  });
}

function encodeCursor(row: { createdAt: Date; id: string }): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString("base64url");
}

function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalidCursor();
  const [createdAt, id] = value as unknown[];
  if (typeof createdAt !== "string" || !CURSOR_TIME.test(createdAt)) throw invalidCursor();
  const date = new Date(createdAt);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== createdAt) throw invalidCursor();
  if (typeof id !== "string" || !UUID.test(id)) throw invalidCursor();
  return { createdAt: date, id };
}

/** An organization's notices, newest first, keyset-paginated over (createdAt, id). */
export async function listNoticePage(
  deps: NoticeRouteDeps,
  input: { organizationId: string; limit: number; cursor?: string; status?: NotificationStatus },
) {
  const rows = await store.listNotices(deps.db, {
    organizationId: input.organizationId,
    status: input.status,
    limit: input.limit + 1,
    before: input.cursor === undefined ? undefined : decodeCursor(input.cursor),
  });
  const page = rows.slice(0, input.limit);
  const last = page[page.length - 1];
  return {
    data: page.map(toNoticeResponse),
    nextCursor: rows.length > input.limit && last ? encodeCursor(last) : null,
  };
}

/**
 * `/api/v1/notices`: what the outbox told the organization's admins and billing contact, and
 * what it could not (status `failed` with the last error, `skipped` with why). Admins' sessions
 * only: recipients' addresses are listed.
 */
export function noticeRoutes(deps: NoticeRouteDeps): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/api/v1/notices",
      operationId: "listNotices",
      tag: "Notices",
      summary: "List the organization's notices and their delivery, newest first (admins)",
      role: "admin",
      query: ListNoticesQuery,
      responses: { 200: { description: "A page of notices", schema: NoticeListSchema } },
      errors: ["INVALID_CURSOR"],
      async handler({ query, auth }, res) {
        res.json(
          await listNoticePage(deps, {
            organizationId: auth.organizationId,
            limit: query.limit,
            cursor: query.cursor,
            status: query.status,
          }),
        );
      },
    }),
  ];
}
