import {
  activeBotSql,
  type Db,
  type Meeting,
  type MeetingPlatform,
  type MeetingStatus,
} from "@zigznote/database";

/**
 * The meetings table: every query and conditional update of the feature, nothing else. The
 * rules (what may change, who may see what) live in `meetingService.ts`.
 */

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

export function insertMeeting(db: Db, row: MeetingRow): Promise<Meeting> {
  return db.meeting.create({ data: row });
}

/** The organization's live (not deleted) meeting, or null. */
export function findLiveMeeting(db: Db, key: MeetingKey): Promise<Meeting | null> {
  return db.meeting.findFirst({
    where: { id: key.meetingId, organizationId: key.organizationId, deletedAt: null },
  });
}

/** Newest first by (createdAt, id), strictly after `after`; `limit` rows at most. */
export function findMeetingPage(
  db: Db,
  input: { organizationId: string; status?: MeetingStatus; after?: MeetingCursor; limit: number },
): Promise<Meeting[]> {
  const { after } = input;
  return db.meeting.findMany({
    where: {
      organizationId: input.organizationId,
      deletedAt: null,
      ...(input.status ? { status: input.status } : {}),
      ...(after
        ? {
            OR: [
              { createdAt: { lt: after.createdAt } },
              { createdAt: after.createdAt, id: { lt: after.id } },
            ],
          }
        : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: input.limit,
  });
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

/** Applies `changes` to the live meeting; the row after, or null when there is none. */
export async function updateLiveMeeting(
  db: Db,
  key: MeetingKey,
  changes: MeetingChanges,
): Promise<Meeting | null> {
  const updated = await db.meeting.updateMany({
    where: { id: key.meetingId, organizationId: key.organizationId, deletedAt: null },
    data: changes,
  });
  if (updated.count === 0) return null;
  return db.meeting.findUniqueOrThrow({ where: { id: key.meetingId } });
}

/** Marks the live meeting deleted at `at`; the row after, or null when there is none. */
export function markMeetingDeleted(db: Db, key: MeetingKey, at: Date): Promise<Meeting | null> {
  return updateLiveMeeting(db, key, { deletedAt: at });
}
