import {
  activeBotSql,
  isTerminalBotStatus,
  Prisma,
  TERMINAL_BOT_STATUSES,
  uniqueViolationOf,
  type Bot,
  type BotStatus,
  type Db,
  type MeetingStatus,
} from "@zigznote/database";

/**
 * The bots table: every query and conditional update of the feature, nothing else. The rules
 * (status ranking, which meeting status follows a bot, what a conflict means) live in
 * `botStatus.ts`, `botService.ts` and `stuckBots.ts`; they hand their parameters to these
 * statements.
 */

export interface BotMeetingKey {
  organizationId: string;
  meetingId: string;
}

export type BotReservation =
  | { isReserved: true; botId: string; meetingUrl: string }
  /** The organization has no live meeting with this id. */
  | { isReserved: false; violatedIndex: null }
  /** An active bot already holds the meeting or its link: the unique index that refused. */
  | { isReserved: false; violatedIndex: string };

/** The unique index a violation names (`""` when unknown), or undefined for other errors. */
function violatedIndex(error: unknown): string | undefined {
  const violation = uniqueViolationOf(error);
  return violation ? (violation.constraint ?? "") : undefined;
}

interface HistoryEntry {
  status: BotStatus;
  subCode?: string | null;
  at: Date;
  source: string;
}

function historyJson(entry: HistoryEntry): string {
  return JSON.stringify({
    status: entry.status,
    ...(entry.subCode ? { subCode: entry.subCode } : {}),
    at: entry.at.toISOString(),
    source: entry.source,
  });
}

/**
 * Locks the organization's live meeting FOR KEY SHARE until the transaction ends (the lock
 * store.reserveBot takes, taken first so that billing's guard can come between); false when
 * there is none.
 */
export async function lockMeetingForBot(db: Db, key: BotMeetingKey): Promise<boolean> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM meetings
     WHERE id = ${key.meetingId}::uuid AND organization_id = ${key.organizationId}::uuid
       AND deleted_at IS NULL
       FOR KEY SHARE`;
  return rows.length > 0;
}

/**
 * Inserts a `pending` bot for the organization's live meeting, copying its normalized link, in
 * one statement. FOR KEY SHARE holds the meeting's link steady against a concurrent link change
 * (updateMeeting locks the row FOR UPDATE), so the copied link stays true. It is the weakest lock
 * that does: a stronger one (FOR SHARE) would block status updates of the meeting (FOR NO KEY
 * UPDATE) while they hold the bot row a waiting reservation checks its unique index against - a
 * deadlock under concurrent requests. The partial unique indexes over active bots refuse every
 * concurrent reservation but one.
 */
export async function reserveBot(
  db: Db,
  input: BotMeetingKey & { botName: string; at: Date; source: string },
): Promise<BotReservation> {
  const history = historyJson({ status: "pending", at: input.at, source: input.source });
  try {
    const rows = await db.$queryRaw<{ id: string; meeting_url: string }[]>`
      WITH meeting AS (
        SELECT id, organization_id, meeting_url, normalized_meeting_url FROM meetings
        WHERE id = ${input.meetingId}::uuid AND organization_id = ${input.organizationId}::uuid
          AND deleted_at IS NULL
        FOR KEY SHARE
      ), reserved AS (
        INSERT INTO bots (meeting_id, organization_id, normalized_meeting_url, bot_name, status,
                          last_status_at, status_history)
        SELECT id, organization_id, normalized_meeting_url, ${input.botName}, 'pending', ${input.at},
               jsonb_build_array(${history}::jsonb)
        FROM meeting
        RETURNING id
      )
      SELECT reserved.id::text, meeting.meeting_url FROM reserved, meeting`;
    const row = rows[0];
    if (!row) return { isReserved: false, violatedIndex: null };
    return { isReserved: true, botId: row.id, meetingUrl: row.meeting_url };
  } catch (error) {
    const index = violatedIndex(error);
    if (index === undefined) throw error;
    return { isReserved: false, violatedIndex: index };
  }
}

/** The meeting of the organization's active bot on the same normalized link as `meetingId`. */
export async function findActiveBotMeetingOnLink(
  db: Db,
  key: BotMeetingKey,
): Promise<string | undefined> {
  // `activeBotSql` names `status` unqualified, which is ambiguous in this join.
  const rows = await db.$queryRaw<{ meeting_id: string }[]>`
    SELECT b.meeting_id::text FROM bots b
    JOIN meetings m ON m.id = ${key.meetingId}::uuid
    WHERE b.organization_id = ${key.organizationId}::uuid
      AND b.normalized_meeting_url = m.normalized_meeting_url
      AND b.status::text <> ALL(${TERMINAL_BOT_STATUSES as string[]}::text[])
    LIMIT 1`;
  return rows[0]?.meeting_id;
}

/**
 * When a status write may apply. Either a provider's report, ranked against what the bot shows,
 * or our own change of a bot that must still be exactly as read.
 */
export type BotStatusGuard =
  | {
      /** The bot with this Recall id, if the status is newer than its latest applied one. */
      recallBotId: string;
      /** Ties in time go to the higher rank; an ended bot only moves up among terminal statuses. */
      ranks: Readonly<Record<BotStatus, number>>;
      /** Statuses after which nothing applies. */
      finalStatuses: readonly BotStatus[];
    }
  | {
      /** The bot with this id, if it still shows `status` (and `lastStatusAt`, when given). */
      botId: string;
      status: BotStatus;
      lastStatusAt?: Date;
    };

export interface BotStatusWrite {
  guard: BotStatusGuard;
  status: BotStatus;
  /** Recall's sub code; undefined leaves the bot's as it is. */
  subCode?: string | null;
  /** When the status happened: the bot's lastStatusAt, its history entry, endedAt if terminal. */
  at: Date;
  /** lastStatusAt never moves back (GREATEST of the row's and `at`). */
  isStatusTimeMonotonic?: boolean;
  /** Who reports it (kept in the history). */
  source: string;
  /** Recorded with a terminal status. */
  terminalReason?: string | null;
  /** Recall's id, recorded with the bot's first status from Recall. */
  recallBotId?: string;
  /** Where the bot's meeting goes, unless it is in one of `unless`; null leaves it. */
  meeting: { status: MeetingStatus; unless: readonly MeetingStatus[] } | null;
}

export interface WrittenBotStatus {
  botId: string;
  meetingId: string;
  /** The meeting was (soft-)deleted when the status was written. */
  isMeetingDeleted: boolean;
}

function guardSql(write: BotStatusWrite): Prisma.Sql {
  const { guard } = write;
  if ("botId" in guard) {
    return Prisma.sql`id = ${guard.botId}::uuid AND status = ${guard.status}::"BotStatus"
      ${guard.lastStatusAt ? Prisma.sql`AND last_status_at = ${guard.lastStatusAt}` : Prisma.empty}`;
  }
  const names = Object.keys(guard.ranks) as BotStatus[];
  const statusNames = names as string[];
  const statusRanks = names.map((name) => guard.ranks[name]);
  const rank = guard.ranks[write.status];
  const isTerminal = isTerminalBotStatus(write.status);
  const terminal = TERMINAL_BOT_STATUSES as string[];
  const final = guard.finalStatuses as string[];
  // A final status (fatal) ends a bot that has not reached one whatever its time: otherwise a
  // `done` stamped after `fatal` would win or lose depending on which Recall delivered first.
  const isFinal = final.includes(write.status);
  return Prisma.sql`recall_bot_id = ${guard.recallBotId}
    AND NOT (status::text = ANY(${final}::text[]))
    AND (${isFinal}
         OR ((last_status_at < ${write.at}
              OR (last_status_at = ${write.at}
                  AND (${statusRanks}::int[])[array_position(${statusNames}::text[], status::text)] < ${rank}))
             AND (NOT (status::text = ANY(${terminal}::text[]))
                  OR (${isTerminal}
                      AND (${statusRanks}::int[])[array_position(${statusNames}::text[], status::text)] < ${rank}))))`;
}

/**
 * Every change of a bot's status, as one conditional UPDATE: the row lock serializes writers and
 * PostgreSQL re-checks the guard on the latest row version, so a write applies only to the bot
 * as its guard expects it. Appends to the history, sets endedAt (the first terminal time) and
 * terminalReason on a terminal status, records Recall's id when given, and moves the meeting
 * with its bot, all in the same statement. Null when the guard refused (or no such bot).
 */
export async function writeBotStatus(
  db: Db,
  write: BotStatusWrite,
): Promise<WrittenBotStatus | null> {
  const history = historyJson(write);
  const statusAt = write.isStatusTimeMonotonic
    ? Prisma.sql`GREATEST(last_status_at, ${write.at})`
    : Prisma.sql`${write.at}`;
  // A bot that has not ended has no endedAt (it is only ever set with a terminal status): the
  // earliest terminal time is kept (a final status may be older than the end it overrides), and
  // it is a plain set for a first one.
  const ended = isTerminalBotStatus(write.status)
    ? Prisma.sql`ended_at = LEAST(COALESCE(ended_at, ${write.at}), ${write.at}), terminal_reason = ${write.terminalReason ?? null},`
    : Prisma.empty;
  const moved = write.meeting
    ? Prisma.sql`, moved AS (
        UPDATE meetings SET status = ${write.meeting.status}::"MeetingStatus", updated_at = now()
         WHERE id IN (SELECT meeting_id FROM applied)
           AND NOT (status::text = ANY(${write.meeting.unless}::text[]))
      )`
    : Prisma.empty;
  const rows = await db.$queryRaw<{ id: string; meeting_id: string; meeting_deleted: boolean }[]>`
    WITH applied AS (
      UPDATE bots SET
        status = ${write.status}::"BotStatus",
        ${write.subCode === undefined ? Prisma.empty : Prisma.sql`sub_code = ${write.subCode},`}
        ${write.recallBotId === undefined ? Prisma.empty : Prisma.sql`recall_bot_id = ${write.recallBotId},`}
        last_status_at = ${statusAt},
        status_history = status_history || jsonb_build_array(${history}::jsonb),
        ${ended}
        updated_at = now()
      WHERE ${guardSql(write)}
      RETURNING id, meeting_id
    )${moved}
    SELECT applied.id::text, applied.meeting_id::text, (m.deleted_at IS NOT NULL) AS meeting_deleted
      FROM applied JOIN meetings m ON m.id = applied.meeting_id`;
  const row = rows[0];
  return row
    ? { botId: row.id, meetingId: row.meeting_id, isMeetingDeleted: row.meeting_deleted }
    : null;
}

/**
 * A terminal status older than the bot's end (`done` overtook `call_ended`): the bot ended then.
 * Only the end time moves; never for a released reservation.
 */
export async function recordEarlierEnd(
  db: Db,
  input: { recallBotId: string; at: Date },
): Promise<void> {
  await db.$executeRaw`
    UPDATE bots SET ended_at = ${input.at}, updated_at = now()
    WHERE recall_bot_id = ${input.recallBotId} AND ended_at > ${input.at}
      AND status::text <> 'failed'`;
}

export function findBot(db: Db, botId: string): Promise<Bot> {
  return db.bot.findUniqueOrThrow({ where: { id: botId } });
}

/** The status of the bot with this id, or null. */
export async function findBotStatus(db: Db, botId: string): Promise<BotStatus | null> {
  const row = await db.bot.findUnique({ where: { id: botId }, select: { status: true } });
  return row?.status ?? null;
}

/** Our bot's id for a Recall id, or null when no bot has it (yet). */
export async function findBotIdByRecallId(db: Db, recallBotId: string): Promise<string | null> {
  const row = await db.bot.findUnique({ where: { recallBotId }, select: { id: true } });
  return row?.id ?? null;
}

export interface BotOfRecording {
  id: string;
  meetingId: string;
  organizationId: string;
  meeting: { deletedAt: Date | null };
}

/** The bot with this Recall id, with what a recording import needs, or null. */
export function findBotForRecording(db: Db, recallBotId: string): Promise<BotOfRecording | null> {
  return db.bot.findUnique({
    where: { recallBotId },
    select: {
      id: true,
      meetingId: true,
      organizationId: true,
      meeting: { select: { deletedAt: true } },
    },
  });
}

/** The meeting's newest bot (by creation), or null. */
export function findNewestBot(db: Db, key: BotMeetingKey): Promise<Bot | null> {
  return db.bot.findFirst({
    where: { meetingId: key.meetingId, organizationId: key.organizationId },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
  });
}

/** The id of the meeting's active bot (a reservation waiting for its Recall id included), or null. */
export async function findActiveBotIdOfMeeting(db: Db, meetingId: string): Promise<string | null> {
  const bot = await db.bot.findFirst({
    where: { meetingId, status: { notIn: [...TERMINAL_BOT_STATUSES] } },
    select: { id: true },
  });
  return bot?.id ?? null;
}

/** The organization's active bots (a reservation still waiting for Recall's id included). */
export async function findActiveBotIdsOfOrganization(
  db: Db,
  organizationId: string,
): Promise<string[]> {
  const rows = await db.bot.findMany({
    where: { organizationId, status: { notIn: [...TERMINAL_BOT_STATUSES] } },
    select: { id: true },
    orderBy: { id: "asc" },
  });
  return rows.map((row) => row.id);
}

export interface StuckBotRow {
  id: string;
  recall_bot_id: string | null;
  status: BotStatus;
  last_status_at: Date;
}

/**
 * Bots whose last status is older than `before`, in (last_status_at, id) order strictly after
 * `after` (keyset); `limit` rows at most. `active`: every active bot but reservations (a partial
 * index of active bots). `pending`: reservations. `post_call`: bots left at `call_ended` since
 * `since`, whose `done` never arrived (both on the (status, last_status_at) index).
 */
export function findStuckBotPage(
  db: Db,
  input: {
    which: "active" | "pending" | "post_call";
    before: Date;
    since?: Date;
    after: { at: Date; id: string } | null;
    limit: number;
  },
): Promise<StuckBotRow[]> {
  const { after } = input;
  const which =
    input.which === "active"
      ? Prisma.sql`${activeBotSql} AND status <> 'pending'`
      : input.which === "pending"
        ? Prisma.sql`status = 'pending'`
        : Prisma.sql`status = 'call_ended' AND recall_bot_id IS NOT NULL
          ${input.since ? Prisma.sql`AND last_status_at >= ${input.since}` : Prisma.empty}`;
  return db.$queryRaw<StuckBotRow[]>`
    SELECT id::text, recall_bot_id, status, last_status_at FROM bots
     WHERE ${which} AND last_status_at < ${input.before}
       ${after ? Prisma.sql`AND (last_status_at, id) > (${after.at}, ${after.id}::uuid)` : Prisma.empty}
     ORDER BY last_status_at, id
     LIMIT ${input.limit}`;
}

/**
 * Locks the bot (FOR NO KEY UPDATE, as a status write does) if it is still exactly as selected
 * (same status, same last status time): its organization, or null when a status landed since.
 */
export async function lockBotIfUnchanged(
  db: Db,
  input: { botId: string; status: BotStatus; lastStatusAt: Date },
): Promise<{ organizationId: string } | null> {
  const rows = await db.$queryRaw<{ organization_id: string }[]>`
    SELECT organization_id::text FROM bots
     WHERE id = ${input.botId}::uuid AND status = ${input.status}::"BotStatus"
       AND last_status_at = ${input.lastStatusAt}
       FOR NO KEY UPDATE`;
  const row = rows[0];
  return row ? { organizationId: row.organization_id } : null;
}
