import type { NotificationStatus, PrismaClient } from "@zigznote/database";
import { defineRoute, type RouteDefinition } from "../http/route";
import { decodeCursor, encodeCursor, toPage } from "../lib/cursor";
import { ListNoticesQuery, NoticeListSchema, toNoticeResponse } from "./schemas";
import * as store from "./store";

export interface NoticeRouteDeps {
  db: PrismaClient;
}

function decodeNoticeCursor(cursor: string): { createdAt: Date; id: string } {
  const [createdAt, id] = decodeCursor(cursor, "notice", ["time", "uuid"]);
  return { createdAt, id };
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
    before: input.cursor === undefined ? undefined : decodeNoticeCursor(input.cursor),
  });
  return toPage(rows, input.limit, toNoticeResponse, (last) =>
    encodeCursor("notice", [last.createdAt, last.id]),
  );
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
      async handler({ query, auth }) {
        return {
          status: 200,
          body: await listNoticePage(deps, {
            organizationId: auth.organizationId,
            limit: query.limit,
            cursor: query.cursor,
            status: query.status,
          }),
        };
      },
    }),
  ];
}
