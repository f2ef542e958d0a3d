import { createHash, timingSafeEqual } from "node:crypto";
import express, { type NextFunction, type Request, type Response } from "express";
import type { QueryResultRow } from "pg";

/**
 * The baseline of `pnpm bench:api`: bare Express 5 + pg serving the measured routes with the
 * statements the app sends for them (the stores' plain SQL, copied), in the same order and with
 * the same round trips. What it leaves out is everything but the database
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

const MEETING_COLUMNS = `id, organization_id AS "organizationId", created_by_id AS "createdById", title,
  meeting_url AS "meetingUrl", normalized_meeting_url AS "normalizedMeetingUrl", platform,
  start_time AS "startTime", end_time AS "endTime", status, deleted_at AS "deletedAt",
  purged_at AS "purgedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

export const BARE_SQL = {
  /** identity/store.findStoredApiKey (the app's cache misses only). */
  apiKeyByPrefix: `SELECT k.id, k.organization_id AS "organizationId", k.prefix, k.secret_hash AS "secretHash",
            k.scopes, k.last_used_at AS "lastUsedAt", k.expires_at AS "expiresAt",
            k.revoked_at AS "revokedAt", o.deleted_at IS NOT NULL AS "isOrganizationDeleted"
       FROM api_keys k JOIN organizations o ON o.id = k.organization_id
      WHERE k.prefix = $1`,
  /** GET /me: identity/store.findCallerRows */
  me: `SELECT o.id, o.name, o.clerk_id AS "clerkId",
            u.id AS "userId", u.clerk_id AS "userClerkId", u.email AS "userEmail",
            k.id AS "keyId", k.name AS "keyName", k.prefix AS "keyPrefix"
       FROM organizations o
       LEFT JOIN users u ON u.id = $2::uuid
       LEFT JOIN api_keys k ON k.id = $3::uuid
      WHERE o.id = $1::uuid`,
  /** GET /meetings (first page): meetings/store.findMeetingPage */
  listMeetings: `SELECT ${MEETING_COLUMNS} FROM meetings
      WHERE organization_id = $1::uuid AND deleted_at IS NULL
      ORDER BY created_at DESC, id DESC
      LIMIT $2::int`,
  /** meetings/store.findLiveMeeting */
  getMeeting: `SELECT ${MEETING_COLUMNS} FROM meetings
      WHERE id = $1::uuid AND organization_id = $2::uuid AND deleted_at IS NULL`,
  /** billing/store.findAccessRow (billing/access.assertCanWrite) */
  writeAccess: `SELECT o.plan_slug, o.plan_violations, p.max_team_members, p.max_meetings_per_month,
            EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.organization_id = o.id AND s.status = 'suspended') AS is_suspended
       FROM organizations o JOIN plans p ON p.slug = o.plan_slug
      WHERE o.id = $1::uuid AND o.deleted_at IS NULL`,
  /** billing/store.lockAccessRow (billing/access.guardWrite, in the create's transaction) */
  lockAccess: `SELECT o.plan_slug, o.plan_violations,
            (SELECT max_team_members FROM plans WHERE slug = o.plan_slug) AS max_team_members,
            (SELECT max_meetings_per_month FROM plans WHERE slug = o.plan_slug)
              AS max_meetings_per_month,
            EXISTS (SELECT 1 FROM subscriptions s
                     WHERE s.organization_id = o.id AND s.status = 'suspended'
                       AND (s.comp_until IS NULL OR s.comp_until <= $2)) AS is_suspended
       FROM organizations o
      WHERE o.id = $1::uuid AND o.deleted_at IS NULL
        FOR NO KEY UPDATE`,
  /** recordings/store.countMeetingsOfMonth (only on plans with a meeting limit) */
  countMeetings: `SELECT count(*)::int AS n FROM (SELECT 1 FROM meetings
      WHERE organization_id = $1::uuid
        AND created_at >= $2::timestamptz AND created_at < $3::timestamptz
      ORDER BY created_at LIMIT $4::bigint) m`,
  /**
   * The usage aggregate the write guard ran before every limited create until issue 22 (the
   * sum over every stored object included): `bench:limits` measures today's create against it.
   */
  usageBefore: `
    SELECT
      (SELECT COALESCE(SUM(size_bytes), 0)::bigint FROM storage_objects
        WHERE organization_id = $1::uuid) AS storage_bytes,
      (SELECT count(*) FROM meetings
        WHERE organization_id = $1::uuid AND created_at >= $2) AS meetings,
      (SELECT count(*) FROM memberships ms JOIN users u ON u.id = ms.user_id
        WHERE ms.organization_id = $1::uuid AND u.deleted_at IS NULL) AS members`,
  /** meetings/store.insertMeeting */
  insertMeeting: `INSERT INTO meetings (organization_id, created_by_id, title, meeting_url,
                           normalized_meeting_url, platform, start_time, end_time, created_at,
                           updated_at)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::"MeetingPlatform", $7::timestamptz,
             $8::timestamptz, $9::timestamptz, $9::timestamptz)
     RETURNING ${MEETING_COLUMNS}`,
  /** meetings/store.updateLiveMeeting of a title (the time check in the WHERE) */
  updateTitle: `UPDATE meetings SET updated_at = $3::timestamptz, title = $4::text
      WHERE id = $1::uuid AND organization_id = $2::uuid AND deleted_at IS NULL AND (end_time < start_time) IS NOT TRUE
      RETURNING ${MEETING_COLUMNS}`,
} as const;

interface MeetingRow {
  id: string;
  title: string;
  meetingUrl: string;
  platform: string;
  status: string;
  startTime: Date | null;
  endTime: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

interface KeyRow {
  id: string;
  organizationId: string;
  prefix: string;
  secretHash: string;
  scopes: string[];
  expiresAt: Date | null;
  revokedAt: Date | null;
  isOrganizationDeleted: boolean;
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
  meetingUrl: row.meetingUrl,
  platform: row.platform,
  status: row.status,
  startTime: iso(row.startTime),
  endTime: iso(row.endTime),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
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

export interface BareOptions {
  /**
   * How POST /meetings is guarded: `transaction` (default) as the app does it, the guard and the
   * insert in one transaction under the organization's lock; `before` as it was until issue 22,
   * a check before an insert of its own (no lock; the usage aggregate on limited plans).
   */
  createGuard?: "transaction" | "before";
}

/** The baseline app over `db` (a pg Pool, or a wrapper around one). */
export function createBareApp(db: BareDb, options: BareOptions = {}): express.Express {
  const keys = new Map<string, KeyRow>();
  const app = express();
  app.disable("x-powered-by");

  const auth = async (req: Request, res: Response, next: NextFunction) => {
    const match = KEY_PATTERN.exec(req.get("authorization") ?? "");
    if (!match) throw new HttpError(401, "INVALID_API_KEY");
    const [, prefix, secret] = match as unknown as [string, string, string];
    let key = keys.get(prefix);
    if (!key) {
      const { rows } = await db.query<KeyRow>(BARE_SQL.apiKeyByPrefix, [prefix]);
      const row = rows[0];
      if (!row) throw new HttpError(401, "INVALID_API_KEY");
      keys.set(prefix, (key = row));
    }
    const presented = createHash("sha256").update(secret).digest();
    const isMatch = timingSafeEqual(presented, Buffer.from(key.secretHash, "hex"));
    const isExpired = key.expiresAt !== null && key.expiresAt.getTime() <= Date.now();
    if (!isMatch || key.revokedAt || isExpired || key.isOrganizationDeleted)
      throw new HttpError(401, "INVALID_API_KEY");
    res.locals.caller = {
      organizationId: key.organizationId,
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
  /** billing/access.assertCanWrite before an update: suspended or not. */
  const assertCanUpdate = async (organizationId: string) => {
    const { rows } = await db.query<{ is_suspended: boolean }>(BARE_SQL.writeAccess, [
      organizationId,
    ]);
    const row = rows[0];
    if (!row) throw new HttpError(404, "NOT_FOUND");
    if (row.is_suspended) throw new HttpError(402, "SUBSCRIPTION_SUSPENDED");
  };
  /**
   * billing/access.guardWrite for a meeting, in the create's transaction: the organization row
   * locked, then at most limit + 1 of the month's meetings counted.
   */
  const guardCreate = async (
    client: Awaited<ReturnType<BareDb["connect"]>>,
    organizationId: string,
    now: Date,
  ) => {
    const { rows } = await client.query<{
      is_suspended: boolean;
      max_meetings_per_month: number | null;
    }>(BARE_SQL.lockAccess, [organizationId, now]);
    const row = rows[0];
    if (!row) throw new HttpError(404, "NOT_FOUND");
    if (row.is_suspended) throw new HttpError(402, "SUBSCRIPTION_SUSPENDED");
    const limit = row.max_meetings_per_month;
    if (limit === null) return;
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const nextMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
    const counted = await client.query<{ n: number }>(BARE_SQL.countMeetings, [
      organizationId,
      monthStart,
      nextMonth,
      limit + 1,
    ]);
    if ((counted.rows[0]?.n ?? 0) >= limit) throw new HttpError(403, "PLAN_LIMIT_MEETINGS");
  };
  /** The check before the write that the app made until issue 22. */
  const checkBefore = async (organizationId: string, now: Date) => {
    const { rows } = await db.query<{
      is_suspended: boolean;
      max_meetings_per_month: number | null;
    }>(BARE_SQL.writeAccess, [organizationId]);
    const row = rows[0];
    if (!row) throw new HttpError(404, "NOT_FOUND");
    if (row.is_suspended) throw new HttpError(402, "SUBSCRIPTION_SUSPENDED");
    if (row.max_meetings_per_month === null) return;
    const monthStart = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
    const usage = await db.query<{ meetings: string }>(BARE_SQL.usageBefore, [
      organizationId,
      monthStart,
    ]);
    if (Number(usage.rows[0]?.meetings ?? 0) >= row.max_meetings_per_month) {
      throw new HttpError(403, "PLAN_LIMIT_MEETINGS");
    }
  };
  const findMeeting = async (organizationId: string, id: string) => {
    if (!UUID.test(id)) throw new HttpError(404, "NOT_FOUND");
    const { rows } = await db.query<MeetingRow>(BARE_SQL.getMeeting, [id, organizationId]);
    if (!rows[0]) throw new HttpError(404, "NOT_FOUND");
    return rows[0];
  };

  app.get("/api/v1/me", auth, async (_req, res) => {
    const caller = callerOf(res);
    const { rows } = await db.query<{
      id: string;
      name: string;
      clerkId: string | null;
      keyId: string | null;
      keyName: string | null;
      keyPrefix: string | null;
    }>(BARE_SQL.me, [caller.organizationId, null, caller.apiKeyId]);
    const org = rows[0];
    if (!org) throw new HttpError(404, "NOT_FOUND");
    res.json({
      kind: "apiKey",
      organization: { id: org.id, name: org.name, clerkId: org.clerkId },
      user: null,
      apiKey: org.keyId ? { id: org.keyId, name: org.keyName, prefix: org.keyPrefix } : null,
      role: null,
      scopes: caller.scopes,
      isPlatformAdmin: false,
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
    ]);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const nextCursor =
      rows.length > limit && last
        ? Buffer.from(JSON.stringify([last.createdAt.toISOString(), last.id])).toString("base64url")
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
      const body = (req.body ?? {}) as Record<string, unknown>;
      const title = requireTitle(body.title);
      const normalized = normalizeZoomUrl(body.meetingUrl);
      const startTime = optionalDate(body.startTime) ?? null;
      const endTime = optionalDate(body.endTime) ?? null;
      if (startTime && endTime && endTime < startTime) throw new HttpError(400, "VALIDATION_ERROR");
      const now = new Date();
      const values = [
        organizationId,
        null,
        title,
        (body.meetingUrl as string).trim(),
        normalized,
        "zoom",
        startTime,
        endTime,
        now,
      ];
      if (options.createGuard === "before") {
        await checkBefore(organizationId, now);
        const { rows } = await db.query<MeetingRow>(BARE_SQL.insertMeeting, values);
        res.status(201).json(toMeeting(rows[0]!));
        return;
      }
      // The guard and the insert in one transaction, as meetings/meetingService.createMeeting.
      const client = await db.connect();
      let row: MeetingRow;
      try {
        await client.query("BEGIN");
        await guardCreate(client, organizationId, now);
        const { rows } = await client.query<MeetingRow>(BARE_SQL.insertMeeting, values);
        await client.query("COMMIT");
        row = rows[0]!;
      } catch (error) {
        await client.query("ROLLBACK");
        throw error;
      } finally {
        client.release();
      }
      res.status(201).json(toMeeting(row));
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
      await assertCanUpdate(organizationId);
      const body = (req.body ?? {}) as Record<string, unknown>;
      // A title alone (what the bench sends): the app's one UPDATE, times checked in its WHERE.
      if (!UUID.test(id)) throw new HttpError(404, "NOT_FOUND");
      if (Object.keys(body).length !== 1) throw new HttpError(400, "VALIDATION_ERROR");
      const { rows } = await db.query<MeetingRow>(BARE_SQL.updateTitle, [
        id,
        organizationId,
        new Date(),
        requireTitle(body.title),
      ]);
      if (!rows[0]) throw new HttpError(404, "NOT_FOUND");
      res.json(toMeeting(rows[0]));
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
