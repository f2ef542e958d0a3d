import {
  activeBotSql,
  executeStatement,
  queryRows,
  type Db,
  type Meeting,
  type MeetingPlatform,
  type MeetingStatus,
  type SqlDb,
  type SqlValue,
} from "@zigznote/database";

/**
 * The meetings table: every query and conditional update of the feature, nothing else. The
 * rules (what may change, who may see what) live in `meetingService.ts`.
 *
 * The statements of the busy routes (read, list, create, update, delete) are plain SQL
 * (`queryRows`: pg on Prisma's own pool, no query compilation per call); their rows have the
 * Prisma model's shape (`MEETING_COLUMNS` aliases every column to its field name).
 */

/** Every column of `meetings` as the `Meeting` model's field. */
const MEETING_COLUMNS = `id, organization_id AS "organizationId", created_by_id AS "createdById", title,
  meeting_url AS "meetingUrl", normalized_meeting_url AS "normalizedMeetingUrl", platform,
  start_time AS "startTime", end_time AS "endTime", status, deleted_at AS "deletedAt",
  purged_at AS "purgedAt", created_at AS "createdAt", updated_at AS "updatedAt"`;

/** Column and parameter cast of each field a change may set. */
const CHANGE_COLUMNS = {
  title: ["title", "text"],
  meetingUrl: ["meeting_url", "text"],
  normalizedMeetingUrl: ["normalized_meeting_url", "text"],
  platform: ["platform", '"MeetingPlatform"'],
  startTime: ["start_time", "timestamptz"],
  endTime: ["end_time", "timestamptz"],
  deletedAt: ["deleted_at", "timestamptz"],
} as const satisfies Record<keyof MeetingChanges, readonly [string, string]>;

export interface MeetingRow {
  organizationId: string;
  createdById: string | null;
  title: string;
  meetingUrl: string;
  normalizedMeetingUrl: string;
  platform: MeetingPlatform;
  startTime: Date | null;
  endTime: Date | null;
}

export interface MeetingKey {
  organizationId: string;
  meetingId: string;
}

export interface MeetingCursor {
  createdAt: Date;
  id: string;
}

export type MeetingChanges = Partial<
  Pick<
    MeetingRow,
    "title" | "startTime" | "endTime" | "meetingUrl" | "normalizedMeetingUrl" | "platform"
  > & { deletedAt: Date }
>;

/** Inserts the meeting, created (and updated) at `row.createdAt`: the app's clock. */
export async function insertMeeting(
  db: SqlDb,
  row: MeetingRow & { createdAt: Date },
): Promise<Meeting> {
  const now = row.createdAt;
  const rows = await queryRows<Meeting>(
    db,
    `INSERT INTO meetings (organization_id, created_by_id, title, meeting_url,
                           normalized_meeting_url, platform, start_time, end_time, created_at,
                           updated_at)
     VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6::"MeetingPlatform", $7::timestamptz,
             $8::timestamptz, $9::timestamptz, $9::timestamptz)
     RETURNING ${MEETING_COLUMNS}`,
    [
      row.organizationId,
      row.createdById,
      row.title,
      row.meetingUrl,
      row.normalizedMeetingUrl,
      row.platform,
      row.startTime,
      row.endTime,
      now,
    ],
  );
  return rows[0]!;
}

/** The organization's live (not deleted) meeting, or null. */
export async function findLiveMeeting(db: Db, key: MeetingKey): Promise<Meeting | null> {
  const rows = await queryRows<Meeting>(
    db,
    `SELECT ${MEETING_COLUMNS} FROM meetings
      WHERE id = $1::uuid AND organization_id = $2::uuid AND deleted_at IS NULL`,
    [key.meetingId, key.organizationId],
  );
  return rows[0] ?? null;
}

/** Newest first by (createdAt, id), strictly after `after`; `limit` rows at most. */
export function findMeetingPage(
  db: Db,
  input: { organizationId: string; status?: MeetingStatus; after?: MeetingCursor; limit: number },
): Promise<Meeting[]> {
  const values: SqlValue[] = [input.organizationId];
  let filters = "";
  if (input.status) {
    values.push(input.status);
    filters += ` AND status = $${values.length}::"MeetingStatus"`;
  }
  if (input.after) {
    values.push(input.after.createdAt, input.after.id);
    filters += ` AND (created_at, id) < ($${values.length - 1}::timestamptz, $${values.length}::uuid)`;
  }
  values.push(input.limit);
  return queryRows<Meeting>(
    db,
    `SELECT ${MEETING_COLUMNS} FROM meetings
      WHERE organization_id = $1::uuid AND deleted_at IS NULL${filters}
      ORDER BY created_at DESC, id DESC
      LIMIT $${values.length}::int`,
    values,
  );
}

/**
 * Locks the live meeting row (FOR UPDATE conflicts with the FOR KEY SHARE a bot reservation
 * takes on it) and says whether it exists.
 */
export async function lockLiveMeeting(db: Db, key: MeetingKey): Promise<boolean> {
  const locked = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM meetings
    WHERE id = ${key.meetingId}::uuid AND organization_id = ${key.organizationId}::uuid
      AND deleted_at IS NULL
    FOR UPDATE`;
  return locked.length > 0;
}

/** True while a bot of the meeting is active (the partial unique indexes' predicate). */
export async function hasActiveBot(db: Db, meetingId: string): Promise<boolean> {
  const active = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM bots WHERE meeting_id = ${meetingId}::uuid AND ${activeBotSql} LIMIT 1`;
  return active.length > 0;
}

export function updateMeetingRow(
  db: Db,
  meetingId: string,
  changes: MeetingChanges,
): Promise<Meeting> {
  return db.meeting.update({ where: { id: meetingId }, data: changes });
}

/**
 * Applies `changes` to the live meeting in one statement; the row after, or null when there is
 * none. With `isTimeChecked`, also null when the times after the change would not end after they
 * start (`endTime <= startTime`, each the changed value or the stored one): the check and the
 * write see the same row.
 */
export async function updateLiveMeeting(
  db: SqlDb,
  key: MeetingKey,
  changes: MeetingChanges,
  options: { isTimeChecked?: boolean } = {},
): Promise<Meeting | null> {
  const values: SqlValue[] = [key.meetingId, key.organizationId, new Date()];
  const assignments = ["updated_at = $3::timestamptz"];
  const assigned: Partial<Record<keyof MeetingChanges, string>> = {};
  for (const field of Object.keys(CHANGE_COLUMNS) as (keyof MeetingChanges)[]) {
    const value = changes[field];
    if (value === undefined) continue;
    const [column, cast] = CHANGE_COLUMNS[field];
    values.push(value);
    assigned[field] = `$${values.length}::${cast}`;
    assignments.push(`${column} = ${assigned[field]}`);
  }
  const timeCheck = options.isTimeChecked
    ? ` AND (${assigned.endTime ?? "end_time"} <= ${assigned.startTime ?? "start_time"}) IS NOT TRUE`
    : "";
  const rows = await queryRows<Meeting>(
    db,
    `UPDATE meetings SET ${assignments.join(", ")}
      WHERE id = $1::uuid AND organization_id = $2::uuid AND deleted_at IS NULL${timeCheck}
      RETURNING ${MEETING_COLUMNS}`,
    values,
  );
  return rows[0] ?? null;
}

/**
 * Marks every live meeting of the organization deleted at `at` (the organization was deleted);
 * how many.
 */
export function markOrganizationMeetingsDeleted(
  db: SqlDb,
  input: { organizationId: string; at: Date },
): Promise<number> {
  return executeStatement(
    db,
    `UPDATE meetings SET deleted_at = $2::timestamptz, updated_at = $2::timestamptz
      WHERE organization_id = $1::uuid AND deleted_at IS NULL`,
    [input.organizationId, input.at],
  );
}

/** Marks the live meeting deleted at `at`; the row after, or null when there is none. */
export function markMeetingDeleted(db: SqlDb, key: MeetingKey, at: Date): Promise<Meeting | null> {
  return updateLiveMeeting(db, key, { deletedAt: at });
}
