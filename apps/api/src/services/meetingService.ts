import type { Bot, Db, Meeting, MeetingStatus, PrismaClient } from "@zigznote/database";
import { ConflictError, NotFoundError, ValidationError } from "@zigznote/shared";
import { activeBotSql } from "./botStatus";
import { normalizeMeetingUrl } from "./meetingUrl";

/**
 * An organization's meetings. Every function is scoped by `organizationId`: a meeting of another
 * organization, a soft-deleted one, or an id that is not even a UUID is the same NotFoundError,
 * so callers cannot probe for ids.
 */

export interface CreateMeetingInput {
  organizationId: string;
  createdById?: string | null;
  title: string;
  meetingUrl: string;
  startTime?: Date | null;
  endTime?: Date | null;
}

export interface UpdateMeetingInput {
  title?: string;
  meetingUrl?: string;
  startTime?: Date | null;
  endTime?: Date | null;
}

export interface ListMeetingsInput {
  organizationId: string;
  limit: number;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
  status?: MeetingStatus;
}

export interface MeetingPage {
  items: Meeting[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A client (can open a transaction) rather than an open transaction. */
function isClient(db: Db): db is PrismaClient {
  return typeof (db as Partial<PrismaClient>).$transaction === "function";
}

function meetingNotFound(): NotFoundError {
  return new NotFoundError("Meeting not found");
}

function checkTimes(startTime: Date | null | undefined, endTime: Date | null | undefined): void {
  if (startTime && endTime && endTime < startTime) {
    throw new ValidationError(
      [{ path: "endTime", message: "endTime must not be before startTime", code: "invalid_range" }],
      "endTime must not be before startTime",
    );
  }
}

/** Creates a meeting after validating and normalizing its link. */
export async function createMeeting(db: Db, input: CreateMeetingInput): Promise<Meeting> {
  const { platform, normalized } = normalizeMeetingUrl(input.meetingUrl);
  checkTimes(input.startTime, input.endTime);
  return db.meeting.create({
    data: {
      organizationId: input.organizationId,
      createdById: input.createdById ?? null,
      title: input.title,
      meetingUrl: input.meetingUrl.trim(),
      normalizedMeetingUrl: normalized,
      platform,
      startTime: input.startTime ?? null,
      endTime: input.endTime ?? null,
    },
  });
}

/** The organization's meeting, or NotFoundError (also for deleted meetings and foreign ids). */
export async function getMeeting(
  db: Db,
  organizationId: string,
  meetingId: string,
): Promise<Meeting> {
  if (!UUID.test(meetingId)) throw meetingNotFound();
  const meeting = await db.meeting.findFirst({
    where: { id: meetingId, organizationId, deletedAt: null },
  });
  if (!meeting) throw meetingNotFound();
  return meeting;
}

interface CursorPosition {
  createdAt: Date;
  id: string;
}

export function encodeMeetingCursor(meeting: Pick<Meeting, "createdAt" | "id">): string {
  return Buffer.from(JSON.stringify([meeting.createdAt.toISOString(), meeting.id])).toString(
    "base64url",
  );
}

function decodeMeetingCursor(cursor: string): CursorPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (Array.isArray(value) && value.length === 2) {
      const [createdAt, id] = value as unknown[];
      const date = typeof createdAt === "string" ? new Date(createdAt) : undefined;
      if (date && !Number.isNaN(date.getTime()) && typeof id === "string" && UUID.test(id)) {
        return { createdAt: date, id };
      }
    }
  } catch {
    // fall through to the validation error
  }
  throw new ValidationError(
    [{ path: "cursor", message: "Invalid cursor", code: "invalid_cursor" }],
    "Invalid cursor: pass back a nextCursor exactly as received",
  );
}

/**
 * Newest first, keyset-paginated over (createdAt, id) so that pages neither skip nor repeat
 * rows when meetings are created meanwhile. Soft-deleted meetings are never listed.
 */
export async function listMeetings(db: Db, input: ListMeetingsInput): Promise<MeetingPage> {
  const after = input.cursor === undefined ? undefined : decodeMeetingCursor(input.cursor);
  const items = await db.meeting.findMany({
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
    take: input.limit + 1,
  });
  const hasMore = items.length > input.limit;
  const page = hasMore ? items.slice(0, input.limit) : items;
  const last = page[page.length - 1];
  return { items: page, nextCursor: hasMore && last ? encodeMeetingCursor(last) : null };
}

/**
 * Updates title, times or link (re-validated and re-normalized). The link cannot change while a
 * bot is active in the call: the bot's copy of the normalized link is what keeps a second bot
 * out, so the meeting row is locked and the check and the update happen together.
 */
export async function updateMeeting(
  db: Db,
  organizationId: string,
  meetingId: string,
  patch: UpdateMeetingInput,
): Promise<Meeting> {
  const current = await getMeeting(db, organizationId, meetingId);
  const normalizedUrl =
    patch.meetingUrl === undefined ? undefined : normalizeMeetingUrl(patch.meetingUrl);
  checkTimes(
    patch.startTime === undefined ? current.startTime : patch.startTime,
    patch.endTime === undefined ? current.endTime : patch.endTime,
  );
  const data = {
    ...(patch.title !== undefined ? { title: patch.title } : {}),
    ...(patch.startTime !== undefined ? { startTime: patch.startTime } : {}),
    ...(patch.endTime !== undefined ? { endTime: patch.endTime } : {}),
    ...(normalizedUrl && patch.meetingUrl !== undefined
      ? {
          meetingUrl: patch.meetingUrl.trim(),
          normalizedMeetingUrl: normalizedUrl.normalized,
          platform: normalizedUrl.platform,
        }
      : {}),
  };
  const isLinkChange =
    normalizedUrl !== undefined && normalizedUrl.normalized !== current.normalizedMeetingUrl;

  const apply = async (tx: Db): Promise<Meeting> => {
    // FOR UPDATE conflicts with the FOR KEY SHARE a bot reservation takes on the meeting row.
    const locked = await tx.$queryRaw<{ id: string }[]>`
      SELECT id FROM meetings
      WHERE id = ${meetingId}::uuid AND organization_id = ${organizationId}::uuid
        AND deleted_at IS NULL
      FOR UPDATE`;
    if (locked.length === 0) throw meetingNotFound();
    if (isLinkChange) {
      const active = await tx.$queryRaw<{ id: string }[]>`
        SELECT id FROM bots WHERE meeting_id = ${meetingId}::uuid AND ${activeBotSql} LIMIT 1`;
      if (active.length > 0) {
        throw new ConflictError(
          "The meeting link cannot change while a bot is in the meeting; remove the bot first",
          { meetingId },
          "MEETING_HAS_ACTIVE_BOT",
        );
      }
    }
    return tx.meeting.update({ where: { id: meetingId }, data });
  };

  if (!isLinkChange) {
    const updated = await db.meeting.updateMany({
      where: { id: meetingId, organizationId, deletedAt: null },
      data,
    });
    if (updated.count === 0) throw meetingNotFound();
    return db.meeting.findUniqueOrThrow({ where: { id: meetingId } });
  }
  return isClient(db) ? db.$transaction(apply) : apply(db);
}

export interface SoftDeleteResult {
  meeting: Meeting;
  /** The bot still active in the call, if any: the caller should ask it to leave. */
  activeBot: Bot | null;
}

/**
 * Marks the meeting deleted (it disappears from reads at once; the cleanup job purges its
 * storage later). Deleting twice is a NotFoundError like any unknown id.
 */
export async function softDeleteMeeting(
  db: Db,
  organizationId: string,
  meetingId: string,
  at: Date,
): Promise<SoftDeleteResult> {
  if (!UUID.test(meetingId)) throw meetingNotFound();
  const updated = await db.meeting.updateMany({
    where: { id: meetingId, organizationId, deletedAt: null },
    data: { deletedAt: at },
  });
  if (updated.count === 0) throw meetingNotFound();
  const meeting = await db.meeting.findUniqueOrThrow({ where: { id: meetingId } });
  const active = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM bots WHERE meeting_id = ${meetingId}::uuid AND ${activeBotSql} LIMIT 1`;
  const activeBotId = active[0]?.id;
  const activeBot = activeBotId ? await db.bot.findUnique({ where: { id: activeBotId } }) : null;
  return { meeting, activeBot };
}
