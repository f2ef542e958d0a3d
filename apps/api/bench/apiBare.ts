import { createHash, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import type { QueryResultRow } from "pg";

/**
 * The baseline of `pnpm bench:api`: bare Express 5 + pg serving the measured routes with the
 * statements the app sends for them, written out by hand (captured from Prisma's query log and
 * PostgreSQL's log_statement), in the same order and with the same round trips: the BEGIN/COMMIT
 * Prisma puts around `updateMany` included. What it leaves out is everything but the database
 * work: no zod, no helmet, no logger, no metrics, no request id, no lockout counters. It checks
 * the API key like the app does with its cache on (SHA-256 of the secret against the cached
 * row), validates by hand, and answers with the app's JSON.
 *
 * When the app's SQL for these routes changes, change it here too (the bench prints the number
 * of statements per request of both).
 */

/** The part of pg's Pool the baseline uses. */
export interface BareDb {
  query<R extends QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
  connect(): Promise<{
    query<R extends QueryResultRow>(
      text: string,
      values?: unknown[],
    ): Promise<{ rows: R[]; rowCount: number | null }>;
    release(): void;
  }>;
}

const MEETING_COLUMNS = `"public"."meetings"."id", "public"."meetings"."organization_id", "public"."meetings"."created_by_id", "public"."meetings"."title", "public"."meetings"."meeting_url", "public"."meetings"."normalized_meeting_url", "public"."meetings"."platform"::text, "public"."meetings"."start_time", "public"."meetings"."end_time", "public"."meetings"."status"::text, "public"."meetings"."deleted_at", "public"."meetings"."purged_at", "public"."meetings"."created_at", "public"."meetings"."updated_at"`;

export const BARE_SQL = {
  /** apiKeyService.findStoredApiKey (the app's cache misses only). */
  apiKeyByPrefix: `SELECT "public"."api_keys"."id", "public"."api_keys"."organization_id", "public"."api_keys"."prefix", "public"."api_keys"."secret_hash", "public"."api_keys"."scopes", "public"."api_keys"."last_used_at", "public"."api_keys"."expires_at", "public"."api_keys"."revoked_at" FROM "public"."api_keys" WHERE ("public"."api_keys"."prefix" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
  organizationDeletedAt: `SELECT "public"."organizations"."id", "public"."organizations"."deleted_at" FROM "public"."organizations" WHERE "public"."organizations"."id" = $1 OFFSET $2`,
  /** GET /me */
  meOrganization: `SELECT "public"."organizations"."id", "public"."organizations"."name", "public"."organizations"."clerk_id" FROM "public"."organizations" WHERE ("public"."organizations"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
  meApiKey: `SELECT "public"."api_keys"."id", "public"."api_keys"."name", "public"."api_keys"."prefix" FROM "public"."api_keys" WHERE ("public"."api_keys"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
  /** GET /meetings (first page) */
  listMeetings: `SELECT ${MEETING_COLUMNS} FROM "public"."meetings" WHERE ("public"."meetings"."organization_id" = $1 AND "public"."meetings"."deleted_at" IS NULL) ORDER BY "public"."meetings"."created_at" DESC, "public"."meetings"."id" DESC LIMIT $2 OFFSET $3`,
  /** getMeeting */
  getMeeting: `SELECT ${MEETING_COLUMNS} FROM "public"."meetings" WHERE ("public"."meetings"."id" = $1 AND "public"."meetings"."organization_id" = $2 AND "public"."meetings"."deleted_at" IS NULL) LIMIT $3 OFFSET $4`,
  /** billing/access.assertCanWrite */
  writeAccess: `
    SELECT o.plan_slug, o.plan_violations, p.max_team_members, p.max_meetings_per_month,
           EXISTS (SELECT 1 FROM subscriptions s
                    WHERE s.organization_id = o.id AND s.status = 'suspended') AS is_suspended
      FROM organizations o JOIN plans p ON p.slug = o.plan_slug
     WHERE o.id = $1::uuid AND o.deleted_at IS NULL`,
  /** usageService.getUsage (only on plans with a meeting limit) */
  usage: `
    SELECT
      (SELECT COALESCE(SUM(size_bytes), 0)::bigint FROM storage_objects
        WHERE organization_id = $1::uuid) AS storage_bytes,
      (SELECT count(*) FROM meetings
        WHERE organization_id = $2::uuid AND created_at >= $3) AS meetings,
      (SELECT count(*) FROM memberships ms JOIN users u ON u.id = ms.user_id
        WHERE ms.organization_id = $4::uuid AND u.deleted_at IS NULL) AS members`,
  /** meetingService.createMeeting */
  insertMeeting: `INSERT INTO "public"."meetings" ("organization_id","created_by_id","title","meeting_url","normalized_meeting_url","platform","start_time","end_time","status","created_at","updated_at") VALUES ($1,$2,$3,$4,$5,CAST($6::text AS "public"."MeetingPlatform"),$7,$8,CAST($9::text AS "public"."MeetingStatus"),$10,$11) RETURNING ${MEETING_COLUMNS}`,
  /** meetingService.updateMeeting without a link change: updateMany, then findUniqueOrThrow */
  meetingById: `SELECT ${MEETING_COLUMNS} FROM "public"."meetings" WHERE ("public"."meetings"."id" = $1 AND 1=1) LIMIT $2 OFFSET $3`,
} as const;

interface MeetingRow {
  id: string;
  title: string;
  meeting_url: string;
  platform: string;
  status: string;
  start_time: Date | null;
  end_time: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface KeyRow {
  id: string;
  organization_id: string;
  prefix: string;
  secret_hash: string;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
}

interface Caller {
  organizationId: string;
  apiKeyId: string;
  scopes: string[];
}

const KEY_PATTERN = /^Bearer zn_live_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})[0-9A-Za-z]{6}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const iso = (date: Date | null) => (date ? date.toISOString() : null);
const toMeeting = (row: MeetingRow) => ({
  id: row.id,
  title: row.title,
  meetingUrl: row.meeting_url,
  platform: row.platform,
  status: row.status,
  startTime: iso(row.start_time),
  endTime: iso(row.end_time),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

function optionalDate(value: unknown): Date | null | undefined {
  if (value === undefined || value === null) return value;
  const date = typeof value === "string" ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new HttpError(400, "VALIDATION_ERROR");
  return date;
}

function requireTitle(value: unknown): string {
  if (typeof value !== "string" || value.trim() === "" || value.length > 200) {
    throw new HttpError(400, "VALIDATION_ERROR");
  }
  return value.trim();
}

/** Zoom links only: enough for the bench's payloads. */
function normalizeZoomUrl(raw: unknown): string {
  if (typeof raw !== "string") throw new HttpError(400, "VALIDATION_ERROR");
  const url = new URL(raw.trim());
  const id = /^\/j\/(\d{9,11})$/.exec(url.pathname)?.[1];
  if (!url.hostname.endsWith("zoom.us") || !id) throw new HttpError(400, "INVALID_MEETING_URL");
  return `zoom:${id}`;
}

/** The baseline app over `db` (a pg Pool, or a wrapper around one). */
export function createBareApp(db: BareDb): express.Express {
  const keys = new Map<string, KeyRow>();
  const app = express();
  app.disable("x-powered-by");

  const auth = async (req: Request, res: Response, next: NextFunction) => {
    const match = KEY_PATTERN.exec(req.get("authorization") ?? "");
    if (!match) throw new HttpError(401, "INVALID_API_KEY");
    const [, prefix, secret] = match as unknown as [string, string, string];
    let key = keys.get(prefix);
    if (!key) {
      const { rows } = await db.query<KeyRow>(BARE_SQL.apiKeyByPrefix, [prefix, 1, 0]);
      const row = rows[0];
      if (!row) throw new HttpError(401, "INVALID_API_KEY");
      await db.query(BARE_SQL.organizationDeletedAt, [row.organization_id, 0]);
      keys.set(prefix, (key = row));
    }
    const presented = createHash("sha256").update(secret).digest();
    const isMatch = timingSafeEqual(presented, Buffer.from(key.secret_hash, "hex"));
    const isExpired = key.expires_at !== null && key.expires_at.getTime() <= Date.now();
    if (!isMatch || key.revoked_at || isExpired) throw new HttpError(401, "INVALID_API_KEY");
    res.locals.caller = {
      organizationId: key.organization_id,
      apiKeyId: key.id,
      scopes: key.scopes,
    } satisfies Caller;
    next();
  };
  const callerOf = (res: Response) => res.locals.caller as Caller;
  const requireScope = (scope: string) => (_req: Request, res: Response, next: NextFunction) => {
    if (!callerOf(res).scopes.includes(scope)) throw new HttpError(403, "INSUFFICIENT_SCOPE");
    next();
  };
  const assertCanWrite = async (organizationId: string, isCreate: boolean) => {
    const { rows } = await db.query<{
      is_suspended: boolean;
      max_meetings_per_month: number | null;
    }>(BARE_SQL.writeAccess, [organizationId]);
    const row = rows[0];
    if (!row) throw new HttpError(404, "NOT_FOUND");
    if (row.is_suspended) throw new HttpError(402, "SUBSCRIPTION_SUSPENDED");
    if (isCreate && row.max_meetings_per_month !== null) {
      const now = new Date();
      const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      const usage = await db.query<{ meetings: string }>(BARE_SQL.usage, [
        organizationId,
        organizationId,
        monthStart,
        organizationId,
      ]);
      if (Number(usage.rows[0]?.meetings ?? 0) >= row.max_meetings_per_month) {
        throw new HttpError(403, "PLAN_LIMIT_MEETINGS");
      }
    }
  };
  const findMeeting = async (organizationId: string, id: string) => {
    if (!UUID.test(id)) throw new HttpError(404, "NOT_FOUND");
    const { rows } = await db.query<MeetingRow>(BARE_SQL.getMeeting, [id, organizationId, 1, 0]);
    if (!rows[0]) throw new HttpError(404, "NOT_FOUND");
    return rows[0];
  };

  app.get("/api/v1/me", auth, async (_req, res) => {
    const caller = callerOf(res);
    const [organization, apiKey] = await Promise.all([
      db.query<{ id: string; name: string; clerk_id: string | null }>(BARE_SQL.meOrganization, [
        caller.organizationId,
        1,
        0,
      ]),
      db.query<{ id: string; name: string; prefix: string }>(BARE_SQL.meApiKey, [
        caller.apiKeyId,
        1,
        0,
      ]),
    ]);
    const org = organization.rows[0];
    if (!org) throw new HttpError(404, "NOT_FOUND");
    res.json({
      kind: "apiKey",
      organization: { id: org.id, name: org.name, clerkId: org.clerk_id },
      user: null,
      apiKey: apiKey.rows[0] ?? null,
      role: null,
      scopes: caller.scopes,
    });
  });

  app.get("/api/v1/meetings", auth, requireScope("meetings:read"), async (req, res) => {
    const limit = req.query.limit === undefined ? 20 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new HttpError(400, "VALIDATION_ERROR");
    }
    const { rows } = await db.query<MeetingRow>(BARE_SQL.listMeetings, [
      callerOf(res).organizationId,
      limit + 1,
      0,
    ]);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const nextCursor =
      rows.length > limit && last
        ? Buffer.from(JSON.stringify([last.created_at.toISOString(), last.id])).toString(
            "base64url",
          )
        : null;
    res.json({ data: page.map(toMeeting), nextCursor });
  });

  app.get("/api/v1/meetings/:id", auth, requireScope("meetings:read"), async (req, res) => {
    const id = req.params.id as string;
    res.json(toMeeting(await findMeeting(callerOf(res).organizationId, id)));
  });

  app.post(
    "/api/v1/meetings",
    auth,
    requireScope("meetings:write"),
    express.json(),
    async (req, res) => {
      const { organizationId } = callerOf(res);
      await assertCanWrite(organizationId, true);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const title = requireTitle(body.title);
      const normalized = normalizeZoomUrl(body.meetingUrl);
      const startTime = optionalDate(body.startTime) ?? null;
      const endTime = optionalDate(body.endTime) ?? null;
      if (startTime && endTime && endTime < startTime) throw new HttpError(400, "VALIDATION_ERROR");
      const now = new Date();
      const { rows } = await db.query<MeetingRow>(BARE_SQL.insertMeeting, [
        organizationId,
        null,
        title,
        (body.meetingUrl as string).trim(),
        normalized,
        "zoom",
        startTime,
        endTime,
        "scheduled",
        now,
        now,
      ]);
      res.status(201).json(toMeeting(rows[0]!));
    },
  );

  app.patch(
    "/api/v1/meetings/:id",
    auth,
    requireScope("meetings:write"),
    express.json(),
    async (req, res) => {
      const { organizationId } = callerOf(res);
      const id = req.params.id as string;
      await assertCanWrite(organizationId, false);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const current = await findMeeting(organizationId, id);
      // Title and times (the bench does not change links, which take the app's locking path).
      const sets: [string, unknown][] = [];
      if (body.title !== undefined) sets.push(["title", requireTitle(body.title)]);
      const startTime = optionalDate(body.startTime);
      const endTime = optionalDate(body.endTime);
      if (startTime !== undefined) sets.push(["start_time", startTime]);
      if (endTime !== undefined) sets.push(["end_time", endTime]);
      if (sets.length === 0 || body.meetingUrl !== undefined) {
        throw new HttpError(400, "VALIDATION_ERROR");
      }
      const start = startTime === undefined ? current.start_time : startTime;
      const end = endTime === undefined ? current.end_time : endTime;
      if (start && end && end < start) throw new HttpError(400, "VALIDATION_ERROR");
      sets.push(["updated_at", new Date()]);
      const assignments = sets.map(([column], i) => `"${column}" = $${i + 1}`).join(", ");
      const n = sets.length;
      const client = await db.connect();
      let updated: number;
      try {
        await client.query("BEGIN");
        const result = await client.query(
          `UPDATE "public"."meetings" SET ${assignments} WHERE ("public"."meetings"."id" = $${n + 1} AND "public"."meetings"."organization_id" = $${n + 2} AND "public"."meetings"."deleted_at" IS NULL)`,
          [...sets.map(([, value]) => value), id, organizationId],
        );
        updated = result.rowCount ?? 0;
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      } finally {
        client.release();
      }
      if (updated === 0) throw new HttpError(404, "NOT_FOUND");
      const { rows } = await db.query<MeetingRow>(BARE_SQL.meetingById, [id, 1, 0]);
      res.json(toMeeting(rows[0]!));
    },
  );

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: { code: "NOT_FOUND", message: "Not found" } });
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const isHttp = error instanceof HttpError;
    const status = isHttp ? error.status : 500;
    const code = isHttp ? error.code : "INTERNAL_ERROR";
    res.status(status).json({ error: { code, message: code } });
  });
  return app;
}
