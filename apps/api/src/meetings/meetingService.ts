import type { Db, Meeting, MeetingStatus, SqlDb } from "@zigznote/database";
import { ConflictError, NotFoundError, ValidationError } from "@zigznote/shared";
import type { WriteGuard } from "../http/auth";
import { withSqlTransaction, withTransaction } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import { decodeCursorTime, invalidCursor } from "../lib/cursor";
import { commitWith, commitPlainWith, type TransactionBracket } from "../lib/transactionHooks";
import { isUuid } from "../lib/ids";
import { normalizeMeetingUrl } from "./meetingUrl";
import * as store from "./store";

/**
 * An organization's meetings. Every function is scoped by `organizationId`: a meeting of another
 * organization, a soft-deleted one, or an id that is not even a UUID is the same NotFoundError,
 * so callers cannot probe for ids.
 */

export interface MeetingDeps {
  /** The client, or a caller's transaction that a create joins (see `createMeeting`). */
  db: Db;
  clock: Clock;
  /**
   * Billing's write guard, run in the create's transaction before the row is written (the
   * composition root wires it; without it nothing is checked, as in tests of the store).
   */
  guardWrite?: WriteGuard;
  /**
   * Called after a meeting is deleted (outside any transaction): billing re-checks the
   * organization's storage (the meeting's recordings no longer count) and the bots feature asks
   * the meeting's active bot to leave. Best effort: it must not throw.
   */
  onMeetingDeleted?(meeting: Meeting): Promise<void>;
}

export interface MeetingRef {
  organizationId: string;
  meetingId: string;
}

export interface CreateMeetingInput {
  organizationId: string;
  createdById?: string | null;
  title: string;
  meetingUrl: string;
  startTime?: Date | null;
  endTime?: Date | null;
}

export interface MeetingPatch {
  title?: string;
  meetingUrl?: string;
  startTime?: Date | null;
  endTime?: Date | null;
}

export interface UpdateMeetingInput extends MeetingRef {
  patch: MeetingPatch;
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

function meetingNotFound(): NotFoundError {
  return new NotFoundError("Meeting not found");
}

/**
 * A meeting ends after it starts: `endTime` must be later than `startTime` when both are set
 * (each the new value or, on an update, the stored one). The field named is the one the request
 * changed (`endTime` when it changed both or neither).
 */
function checkTimes(
  startTime: Date | null | undefined,
  endTime: Date | null | undefined,
  changed: { startTime?: unknown; endTime?: unknown } = {},
): void {
  if (startTime && endTime && endTime.getTime() <= startTime.getTime()) {
    const path =
      changed.startTime !== undefined && changed.endTime === undefined ? "startTime" : "endTime";
    const message =
      path === "startTime"
        ? "startTime must be before the meeting's endTime"
        : "endTime must be after startTime";
    throw new ValidationError(message, {
      fields: [{ path, message, code: "invalid_range" }],
    });
  }
}

/**
 * Creates a meeting after validating its link; the link is stored in its canonical form. One
 * transaction (the caller's, when `deps.db` is one): billing's guard decides under the
 * organization's lock, then the row is written with the same `now`, so the month the guard
 * counted is the month the meeting counts in. `bracket` (an Idempotency-Key's claim and answer)
 * goes with that transaction.
 */
export async function createMeeting(
  deps: Pick<MeetingDeps, "clock" | "guardWrite"> & {
    /** The client, or a caller's transaction (Prisma's or an `SqlTransaction`) to join. */
    db: SqlDb;
  },
  input: CreateMeetingInput,
  bracket?: TransactionBracket<Meeting>,
): Promise<Meeting> {
  const { platform, normalized, url } = normalizeMeetingUrl(input.meetingUrl);
  checkTimes(input.startTime, input.endTime);
  const now = deps.clock.now();
  return withSqlTransaction(
    deps.db,
    async (tx) => {
      await deps.guardWrite?.(tx, {
        organizationId: input.organizationId,
        action: "meeting.create",
        now,
      });
      const meeting = await store.insertMeeting(tx, {
        organizationId: input.organizationId,
        createdById: input.createdById ?? null,
        title: input.title,
        meetingUrl: url,
        normalizedMeetingUrl: normalized,
        platform,
        startTime: input.startTime ?? null,
        endTime: input.endTime ?? null,
        createdAt: now,
      });
      return meeting;
    },
    bracket,
  );
}

/** The organization's meeting, or NotFoundError (also for deleted meetings and foreign ids). */
export async function getMeeting(deps: { db: Db }, ref: MeetingRef): Promise<Meeting> {
  if (!isUuid(ref.meetingId)) throw meetingNotFound();
  const meeting = await store.findLiveMeeting(deps.db, ref);
  if (!meeting) throw meetingNotFound();
  return meeting;
}

export function encodeMeetingCursor(meeting: Pick<Meeting, "createdAt" | "id">): string {
  return Buffer.from(JSON.stringify([meeting.createdAt.toISOString(), meeting.id])).toString(
    "base64url",
  );
}

/** The position a cursor names; ValidationError INVALID_CURSOR for anything we did not issue. */
function decodeMeetingCursor(cursor: string): store.MeetingCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(value) || value.length !== 2) throw invalidCursor();
  const [createdAt, id] = value as unknown[];
  const date = decodeCursorTime(createdAt);
  if (typeof id !== "string" || !isUuid(id)) throw invalidCursor();
  return { createdAt: date, id };
}

/**
 * Newest first, keyset-paginated over (createdAt, id) so that pages neither skip nor repeat
 * rows when meetings are created meanwhile. Soft-deleted meetings are never listed.
 */
export async function listMeetings(
  deps: Pick<MeetingDeps, "db">,
  input: ListMeetingsInput,
): Promise<MeetingPage> {
  const after = input.cursor === undefined ? undefined : decodeMeetingCursor(input.cursor);
  const items = await store.findMeetingPage(deps.db, {
    organizationId: input.organizationId,
    status: input.status,
    after,
    limit: input.limit + 1,
  });
  const hasMore = items.length > input.limit;
  const page = hasMore ? items.slice(0, input.limit) : items;
  const last = page[page.length - 1];
  return { items: page, nextCursor: hasMore && last ? encodeMeetingCursor(last) : null };
}

/**
 * Updates title, times or link (re-validated and re-normalized). The link cannot change while a
 * bot is active in the call: the bot's copy of the normalized link is what keeps a second bot
 * out, so the meeting row is locked and the check and the update happen together. Title and
 * times alone are one statement, the time check in it.
 */
export async function updateMeeting(
  deps: Pick<MeetingDeps, "db">,
  input: UpdateMeetingInput,
  bracket?: TransactionBracket<Meeting>,
): Promise<Meeting> {
  return commitWith(deps.db, bracket, (db) => updateMeetingIn({ db }, input));
}

/** `updateMeeting` in `db`, a client or the caller's transaction. */
async function updateMeetingIn(deps: { db: Db }, input: UpdateMeetingInput): Promise<Meeting> {
  const { patch } = input;
  if (patch.meetingUrl === undefined) return updateTitleOrTimes(deps, input);
  const current = await getMeeting(deps, input);
  const normalizedUrl = normalizeMeetingUrl(patch.meetingUrl);
  checkPatchTimes(patch, current);
  const changes: store.MeetingChanges = {
    ...timeAndTitleChanges(patch),
    meetingUrl: normalizedUrl.url,
    normalizedMeetingUrl: normalizedUrl.normalized,
    platform: normalizedUrl.platform,
  };
  if (normalizedUrl.normalized === current.normalizedMeetingUrl) {
    // The same statement re-checks the times against the row it updates.
    const updated = await store.updateLiveMeeting(deps.db, input, changes, {
      isTimeChecked: hasTimeChange(patch),
    });
    if (updated) return updated;
    checkPatchTimes(patch, await getMeeting(deps, input));
    throw new ConflictError("The meeting changed meanwhile; retry");
  }
  return withTransaction(deps.db, async (tx) => {
    if (!(await store.lockLiveMeeting(tx, input))) throw meetingNotFound();
    // The times may have changed since the read above: check them against the locked row.
    const locked = hasTimeChange(patch) ? await store.findLiveMeeting(tx, input) : null;
    if (locked) checkPatchTimes(patch, locked);
    if (await store.hasActiveBot(tx, input.meetingId)) {
      throw new ConflictError(
        "The meeting link cannot change while a bot is in the meeting; remove the bot first",
        { code: "MEETING_HAS_ACTIVE_BOT", details: { meetingId: input.meetingId } },
      );
    }
    return store.updateMeetingRow(tx, input.meetingId, changes);
  });
}

/** Whether the patch sets or clears a time (only then are the stored times checked). */
function hasTimeChange(patch: MeetingPatch): boolean {
  return patch.startTime !== undefined || patch.endTime !== undefined;
}

/** The patch's times over the meeting's stored ones, checked when the patch changes a time. */
function checkPatchTimes(patch: MeetingPatch, current: Meeting): void {
  if (!hasTimeChange(patch)) return;
  checkTimes(
    patch.startTime === undefined ? current.startTime : patch.startTime,
    patch.endTime === undefined ? current.endTime : patch.endTime,
    patch,
  );
}

function timeAndTitleChanges(patch: MeetingPatch): store.MeetingChanges {
  return {
    ...(patch.title !== undefined ? { title: patch.title } : {}),
    ...(patch.startTime !== undefined ? { startTime: patch.startTime } : {}),
    ...(patch.endTime !== undefined ? { endTime: patch.endTime } : {}),
  };
}

/**
 * One conditional UPDATE (live meeting, times in order after the change). Only when it changes
 * nothing is the row read, to tell a missing meeting (404) from times out of order (400); a
 * concurrent change of the times between the two is retried.
 */
async function updateTitleOrTimes(deps: { db: Db }, input: UpdateMeetingInput): Promise<Meeting> {
  if (!isUuid(input.meetingId)) throw meetingNotFound();
  const { patch } = input;
  const changes = timeAndTitleChanges(patch);
  for (let attempt = 0; ; attempt++) {
    const updated = await store.updateLiveMeeting(deps.db, input, changes, {
      isTimeChecked: hasTimeChange(patch),
    });
    if (updated) return updated;
    checkPatchTimes(patch, await getMeeting(deps, input));
    // The times were changed meanwhile and are in order now: the update may pass this time.
    if (attempt >= 2) throw new ConflictError("The meeting changed meanwhile; retry");
  }
}

/**
 * Marks the meeting deleted (it disappears from reads and its recordings from the storage usage
 * at once; the cleanup job purges its storage later), then lets `onMeetingDeleted` re-check the
 * plan's storage and send its bot home. Deleting twice is a
 * NotFoundError like any unknown id.
 */
export async function deleteMeeting(
  deps: MeetingDeps,
  ref: MeetingRef,
  bracket?: TransactionBracket<Meeting>,
): Promise<Meeting> {
  if (!isUuid(ref.meetingId)) throw meetingNotFound();
  const meeting = await commitPlainWith(deps.db, bracket, async (db) => {
    const deleted = await store.markMeetingDeleted(db, ref, deps.clock.now());
    if (!deleted) throw meetingNotFound();
    return deleted;
  });
  await deps.onMeetingDeleted?.(meeting);
  return meeting;
}

/**
 * The organization was deleted (Clerk's `organization.deleted`, in its transaction `deps.db`):
 * its meetings are deleted with it, so that the storage purge deletes their recordings after
 * STORAGE_PURGE_AFTER_DAYS like any deleted meeting's, and a recording Recall reports later is
 * not copied. Its bots are sent home by their own provider calls (bots/organizationDeletion.ts).
 * How many meetings.
 */
export function deleteOrganizationMeetings(
  deps: { db: Db },
  input: { organizationId: string; at: Date },
): Promise<number> {
  return store.markOrganizationMeetingsDeleted(deps.db, input);
}

/**
 * Locks the organization's live meeting row until `deps.db`'s transaction ends (FOR UPDATE, which
 * also waits for a bot reservation's FOR KEY SHARE); NotFoundError when there is none. Changes
 * that must not interleave for one meeting (its recording, its link) take it first.
 */
export async function lockMeeting(deps: { db: Db }, ref: MeetingRef): Promise<void> {
  if (!isUuid(ref.meetingId) || !(await store.lockLiveMeeting(deps.db, ref))) {
    throw meetingNotFound();
  }
}
