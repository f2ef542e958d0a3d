/* eslint-disable max-lines -- every statement on recordings, imports and direct uploads, so each conditional update is read beside the others on the same rows */
import {
  queryRows,
  type Db,
  type PrismaClient,
  type RecordingImport,
  type SqlDb,
  type RecordingUpload,
  type StorageObject,
} from "@zigznote/database";

/**
 * The recordings' tables (storage objects, recording imports) and the reads of meetings and
 * usage the feature needs: every query and conditional update, nothing else. The rules (what is
 * deleted when, retries, backoff) live in `recordingService.ts`, `imports.ts`, `purge.ts` and
 * `usage.ts`.
 */

export interface RecordingMeetingKey {
  organizationId: string;
  meetingId: string;
}

/** An object's id and where its bytes are. */
export interface StoredKey {
  id: string;
  key: string;
}

export interface StorageObjectRow {
  organizationId: string;
  meetingId: string;
  key: string;
  source: "upload" | "recall";
  contentType: string;
  sizeBytes: bigint;
  sha256: string;
}

/**
 * True when the organization has this live meeting: neither it nor its organization deleted (a
 * deleted organization's recordings are purged like a deleted meeting's, so nothing new is
 * stored for them: a late import's bytes would otherwise be kept after the purge).
 */
export async function hasLiveMeeting(db: Db, key: RecordingMeetingKey): Promise<boolean> {
  const meeting = await db.meeting.findFirst({
    where: {
      id: key.meetingId,
      organizationId: key.organizationId,
      deletedAt: null,
      organization: { deletedAt: null },
    },
    select: { id: true },
  });
  return meeting !== null;
}

/** The meeting's recording objects (of the organization, when given). */
export function findRecordingKeys(
  db: Db,
  input: { meetingId: string; organizationId?: string },
): Promise<StoredKey[]> {
  return db.storageObject.findMany({
    where: { meetingId: input.meetingId, organizationId: input.organizationId, kind: "recording" },
    select: { id: true, key: true },
  });
}

/**
 * The live meeting's newest recording, in one plain statement (the download path: every
 * redirect starts here): null when the organization has no such live meeting, `object: null`
 * when the meeting has no recording.
 */
export async function findLiveMeetingRecording(
  db: Db,
  key: RecordingMeetingKey,
): Promise<{ object: StorageObject | null } | null> {
  const rows = await queryRows<
    Omit<StorageObject, "sizeBytes" | "id"> & { id: string | null; sizeBytes: string | bigint }
  >(
    db,
    `SELECT o.id, o.organization_id AS "organizationId", o.meeting_id AS "meetingId", o.key,
            o.kind, o.source, o.content_type AS "contentType", o.size_bytes AS "sizeBytes",
            o.sha256, o.created_at AS "createdAt"
       FROM meetings m
       LEFT JOIN LATERAL (
         SELECT * FROM storage_objects s
          WHERE s.meeting_id = m.id AND s.organization_id = m.organization_id
            AND s.kind = 'recording'
          ORDER BY s.created_at DESC
          LIMIT 1) o ON true
      WHERE m.id = $1::uuid AND m.organization_id = $2::uuid AND m.deleted_at IS NULL`,
    [key.meetingId, key.organizationId],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.id === null) return { object: null };
  return { object: { ...row, id: row.id, sizeBytes: BigInt(row.sizeBytes) } };
}

/** Whether a storage object row names `key` (a recording recorded there). */
export async function isRecordedKey(db: Db, key: string): Promise<boolean> {
  return (await db.storageObject.count({ where: { key } })) > 0;
}

export function insertRecordingObject(db: Db, row: StorageObjectRow): Promise<StorageObject> {
  return db.storageObject.create({ data: { ...row, kind: "recording" } });
}

export async function deleteStorageObjects(db: Db, ids: string[]): Promise<void> {
  await db.storageObject.deleteMany({ where: { id: { in: ids } } });
}

// --- Recording imports ---

export interface RecordingImportRow {
  organizationId: string;
  meetingId: string;
  botId: string | null;
  provider: string;
  externalId: string;
}

/**
 * Inserts the import, due at `now`, unless one exists for the same provider recording (unique);
 * one that gave up (`failed`) is queued again from scratch (the provider announced the recording
 * again: its media may be there now). The row's id when it was queued, or null when one was
 * pending, running or done already.
 */
export async function insertRecordingImport(
  db: Db,
  row: RecordingImportRow & { now: Date },
): Promise<string | null> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO recording_imports
      (organization_id, meeting_id, bot_id, provider, external_id, next_attempt_at, created_at, updated_at)
    VALUES (${row.organizationId}::uuid, ${row.meetingId}::uuid, ${row.botId}::uuid,
            ${row.provider}, ${row.externalId}, ${row.now}, ${row.now}, ${row.now})
    ON CONFLICT (provider, external_id) DO UPDATE
      SET status = 'pending', attempts = 0, next_attempt_at = EXCLUDED.next_attempt_at,
          updated_at = EXCLUDED.updated_at, source_validator = NULL
      WHERE recording_imports.status = 'failed'
    RETURNING id`;
  return rows[0]?.id ?? null;
}

/**
 * Claims the import with one conditional UPDATE (one worker wins): a pending import that is
 * due, or one whose claim is older than `leaseExpired` (its worker died). The claimed row, or
 * null.
 */
export async function claimRecordingImport(
  db: Db,
  input: { id: string; now: Date; leaseExpired: Date },
): Promise<RecordingImport | null> {
  const claimed = await db.$queryRaw<{ id: string }[]>`
    UPDATE recording_imports
       SET status = 'in_progress', attempts = attempts + 1, updated_at = ${input.now}
     WHERE id = ${input.id}::uuid
       AND ((status = 'pending' AND next_attempt_at <= ${input.now})
            OR (status = 'in_progress' AND updated_at < ${input.leaseExpired}))
     RETURNING id`;
  return claimed.length ? db.recordingImport.findUnique({ where: { id: input.id } }) : null;
}

/**
 * Renews the claim that made `attempts` (its lease starts again at `now`), while it still holds
 * the import. False when the claim was lost.
 */
export async function renewImportClaim(
  db: Db,
  input: { id: string; attempts: number; now: Date },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: { id: input.id, status: "in_progress", attempts: input.attempts },
    data: { updatedAt: input.now },
  });
  return count === 1;
}

/**
 * Marks the import done, only while it is still held by the claim that made `attempts` (a claim
 * whose lease ran out may have been taken over, and the new holder's outcome stands). False when
 * the claim was lost.
 */
export async function markImportDone(
  db: Db,
  input: { id: string; attempts: number; storageObjectId: string },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: { id: input.id, status: "in_progress", attempts: input.attempts },
    data: {
      status: "done",
      storageObjectId: input.storageObjectId,
      lastError: null,
      ...NO_UPLOAD,
    },
  });
  return count === 1;
}

/**
 * Records a failed attempt: retried at `nextAttemptAt`, or given up (`failed`); only while the
 * claim that made `attempts` still holds the import. False when the claim was lost.
 */
export async function markImportAttemptFailed(
  db: Db,
  input: {
    id: string;
    attempts: number;
    isExhausted: boolean;
    lastError: string;
    nextAttemptAt: Date;
  },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: { id: input.id, status: "in_progress", attempts: input.attempts },
    data: {
      status: input.isExhausted ? "failed" : "pending",
      lastError: input.lastError,
      nextAttemptAt: input.nextAttemptAt,
    },
  });
  return count === 1;
}

// --- The multipart upload of a resumable import (kept between its attempts) ---

/** A part of an import's upload as recorded on its row (`uploaded_parts`). */
export interface RecordedPart {
  partNumber: number;
  sizeBytes: number;
  etag: string;
}

/** The columns of an import's upload, emptied (no upload, or it was completed or aborted). */
const NO_UPLOAD = {
  uploadKey: null,
  storageUploadId: null,
  sourceValidator: null,
  sourceSizeBytes: null,
  partSizeBytes: null,
  uploadedParts: [],
} as const;

/** The claim that made `attempts` of import `id` (it is in progress and nobody took it over). */
function heldClaim(input: { id: string; attempts: number }) {
  return { id: input.id, status: "in_progress" as const, attempts: input.attempts };
}

/**
 * Records the upload the claim that made `attempts` has just started (no part yet), with the
 * source's validator and size; the lease starts again at `now`. False when the claim was lost.
 */
export async function recordImportUpload(
  db: Db,
  input: {
    id: string;
    attempts: number;
    now: Date;
    uploadKey: string;
    storageUploadId: string;
    sourceValidator: string | null;
    sourceSizeBytes: number | null;
    partSizeBytes: number;
  },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: heldClaim(input),
    data: {
      uploadKey: input.uploadKey,
      storageUploadId: input.storageUploadId,
      sourceValidator: input.sourceValidator,
      sourceSizeBytes: input.sourceSizeBytes === null ? null : BigInt(input.sourceSizeBytes),
      partSizeBytes: BigInt(input.partSizeBytes),
      uploadedParts: [],
      updatedAt: input.now,
    },
  });
  return count === 1;
}

/**
 * Appends a complete part to the upload `storageUploadId` (the lease starts again at `now`),
 * only while the claim that made `attempts` holds the import. False when the claim was lost.
 */
export async function recordImportPart(
  db: Db,
  input: { id: string; attempts: number; storageUploadId: string; part: RecordedPart; now: Date },
): Promise<boolean> {
  const updated = await db.$executeRaw`
    UPDATE recording_imports
       SET uploaded_parts = uploaded_parts || jsonb_build_array(jsonb_build_object(
             'partNumber', ${input.part.partNumber}::int,
             'sizeBytes', ${input.part.sizeBytes}::bigint,
             'etag', ${input.part.etag}::text)),
           updated_at = ${input.now}
     WHERE id = ${input.id}::uuid AND status = 'in_progress' AND attempts = ${input.attempts}
       AND storage_upload_id = ${input.storageUploadId}`;
  return updated === 1;
}

/** Forgets the upload of a held import (it was aborted: the copy starts again). */
export async function clearImportUpload(
  db: Db,
  input: { id: string; attempts: number; storageUploadId: string },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: { ...heldClaim(input), storageUploadId: input.storageUploadId },
    data: NO_UPLOAD,
  });
  return count === 1;
}

/** Locks the import's row in `tx` and says whether the claim that made `attempts` holds it. */
export async function lockHeldImport(
  tx: Db,
  input: { id: string; attempts: number },
): Promise<boolean> {
  const rows = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM recording_imports
     WHERE id = ${input.id}::uuid AND status = 'in_progress' AND attempts = ${input.attempts}
     FOR UPDATE`;
  return rows.length === 1;
}

/** An upload left on an import that ended (`done` or `failed`): to be aborted. */
export interface LeftoverImportUpload {
  id: string;
  uploadKey: string;
  storageUploadId: string;
}

/**
 * Imports that ended (`done` or `failed`) still naming an upload (its abort failed when they
 * ended), except `excluded` (failed in this run).
 */
export async function findLeftoverImportUploads(
  db: Db,
  input: { limit: number; excluded: string[] },
): Promise<LeftoverImportUpload[]> {
  const rows = await db.recordingImport.findMany({
    where: {
      storageUploadId: { not: null },
      status: { in: ["done", "failed"] },
      id: { notIn: input.excluded },
    },
    select: { id: true, uploadKey: true, storageUploadId: true },
    take: input.limit,
  });
  return rows.flatMap((row) =>
    row.uploadKey && row.storageUploadId
      ? [{ id: row.id, uploadKey: row.uploadKey, storageUploadId: row.storageUploadId }]
      : [],
  );
}

/** Forgets an aborted upload of an import that ended (unless it was queued again meanwhile). */
export async function clearLeftoverImportUpload(
  db: Db,
  input: { id: string; storageUploadId: string },
): Promise<boolean> {
  const { count } = await db.recordingImport.updateMany({
    where: {
      id: input.id,
      storageUploadId: input.storageUploadId,
      status: { in: ["done", "failed"] },
    },
    data: NO_UPLOAD,
  });
  return count === 1;
}

/** The uploads of imports still queued or running: a store-wide sweep must leave them open. */
export async function findLiveImportUploadIds(db: Db): Promise<Set<string>> {
  const rows = await db.recordingImport.findMany({
    where: { storageUploadId: { not: null }, status: { in: ["pending", "in_progress"] } },
    select: { storageUploadId: true },
  });
  return new Set(rows.flatMap((row) => (row.storageUploadId ? [row.storageUploadId] : [])));
}

/** Ids of imports due at `now` or held past their lease, soonest due first. */
export async function findDueImportIds(
  db: Db,
  input: { now: Date; leaseExpired: Date; limit: number },
): Promise<string[]> {
  const due = await db.recordingImport.findMany({
    where: {
      OR: [
        { status: "pending", nextAttemptAt: { lte: input.now } },
        { status: "in_progress", updatedAt: { lt: input.leaseExpired } },
      ],
    },
    select: { id: true },
    orderBy: { nextAttemptAt: "asc" },
    take: input.limit,
  });
  return due.map((row) => row.id);
}

// --- Direct uploads ---

export interface RecordingUploadRow {
  organizationId: string;
  meetingId: string;
  key: string;
  storageUploadId: string | null;
  contentType: string;
  sizeBytes: bigint;
  partSizeBytes: bigint;
  createdAt: Date;
  expiresAt: Date;
}

export function insertRecordingUpload(db: Db, row: RecordingUploadRow): Promise<RecordingUpload> {
  return db.recordingUpload.create({ data: row });
}

/** The upload of this meeting of the organization, or null. */
export function findRecordingUpload(
  db: Db,
  input: { id: string; organizationId: string; meetingId: string },
): Promise<RecordingUpload | null> {
  return db.recordingUpload.findFirst({
    where: { id: input.id, organizationId: input.organizationId, meetingId: input.meetingId },
  });
}

/**
 * Marks a pending upload completed (only while `now` is before its `expiresAt`) with one
 * conditional UPDATE: of two concurrent completions exactly one gets true.
 */
export async function markUploadCompleted(
  db: Db,
  input: { id: string; now: Date },
): Promise<boolean> {
  const { count } = await db.recordingUpload.updateMany({
    where: { id: input.id, status: "pending", expiresAt: { gt: input.now } },
    data: { status: "completed", closedAt: input.now },
  });
  return count === 1;
}

export async function setUploadStorageObject(
  db: Db,
  input: { id: string; storageObjectId: string },
): Promise<void> {
  await db.recordingUpload.update({
    where: { id: input.id },
    data: { storageObjectId: input.storageObjectId },
  });
}

/** Marks a pending upload aborted; false when it was not pending any more. */
export async function markUploadAborted(
  db: Db,
  input: { id: string; now: Date },
): Promise<boolean> {
  const { count } = await db.recordingUpload.updateMany({
    where: { id: input.id, status: "pending" },
    data: { status: "aborted", closedAt: input.now },
  });
  return count === 1;
}

/** Pending uploads begun before `createdBefore` (never completed), oldest first. */
export function findAbandonedUploads(
  db: Db,
  input: { createdBefore: Date; limit: number; excluded: string[] },
): Promise<RecordingUpload[]> {
  return db.recordingUpload.findMany({
    where: {
      status: "pending",
      createdAt: { lt: input.createdBefore },
      id: { notIn: input.excluded },
    },
    orderBy: { createdAt: "asc" },
    take: input.limit,
  });
}

// --- Storage migration ---

export interface StoredObjectRef {
  id: string;
  key: string;
  contentType: string;
  sizeBytes: bigint;
  sha256: string | null;
}

/** A page of every stored object, in id order after `afterId`. */
export function findStorageObjectsAfter(
  db: Db,
  input: { afterId: string | null; limit: number },
): Promise<StoredObjectRef[]> {
  return db.storageObject.findMany({
    where: input.afterId ? { id: { gt: input.afterId } } : {},
    select: { id: true, key: true, contentType: true, sizeBytes: true, sha256: true },
    orderBy: { id: "asc" },
    take: input.limit,
  });
}

/** How many stored objects there are, and their bytes. */
export async function countStorageObjects(db: Db): Promise<{ count: number; bytes: bigint }> {
  const result = await db.storageObject.aggregate({ _count: true, _sum: { sizeBytes: true } });
  return { count: result._count, bytes: result._sum.sizeBytes ?? 0n };
}

// --- Storage purge ---

/**
 * Meetings deleted before `cutoff`, or of an organization deleted before it, and not purged yet
 * (minus `excluded`), oldest deletion first. A deleted organization's meetings are not deleted
 * one by one, and nobody can reach their recordings any more: without the second condition their
 * bytes stayed in the store for good.
 */
export async function findPurgeableMeetingIds(
  db: Db,
  input: { cutoff: Date; excluded: string[]; limit: number },
): Promise<string[]> {
  // Two index ranges rather than one OR across the join (which the planner turns into a scan
  // of every meeting): meetings by deleted_at, and the meetings of the (few) deleted
  // organizations by organization_id.
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM (
      SELECT m.id, m.deleted_at FROM meetings m
       WHERE m.deleted_at < ${input.cutoff} AND m.purged_at IS NULL
      UNION
      SELECT m.id, m.deleted_at FROM organizations o JOIN meetings m ON m.organization_id = o.id
       WHERE o.deleted_at < ${input.cutoff} AND m.purged_at IS NULL) p
     WHERE p.id <> ALL(${input.excluded}::uuid[])
     ORDER BY p.deleted_at ASC NULLS LAST, p.id
     LIMIT ${input.limit}`;
  return rows.map((row) => row.id);
}

export interface PurgeableObject extends StoredKey {
  meetingId: string;
  organizationId: string;
  sizeBytes: bigint;
}

/** Every stored object of these meetings. */
export function findObjectsOfMeetings(db: Db, meetingIds: string[]): Promise<PurgeableObject[]> {
  return db.storageObject.findMany({
    where: { meetingId: { in: meetingIds } },
    select: { id: true, key: true, meetingId: true, organizationId: true, sizeBytes: true },
  });
}

/**
 * In one transaction: deletes the rows of the objects whose files are gone and marks the
 * meetings purged at `at` (those not purged yet).
 */
export async function deleteObjectsAndMarkPurged(
  db: PrismaClient,
  input: { objectIds: string[]; meetingIds: string[]; at: Date },
): Promise<void> {
  await db.$transaction([
    db.storageObject.deleteMany({ where: { id: { in: input.objectIds } } }),
    db.meeting.updateMany({
      where: { id: { in: input.meetingIds }, purgedAt: null },
      data: { purgedAt: input.at },
    }),
  ]);
}

// --- Usage ---
//
// What counts against a plan, written once: the organization endpoint, the violation check, the
// plan-change preview, the console and the write guard all count through these fragments, so
// they cannot disagree. Each takes the placeholders of its parameters.

/**
 * The month's meetings: every meeting created in it, deleted (soft) or purged too: a meeting
 * counts for the month it was created in, whatever happens to it afterwards.
 */
const meetingsOfMonth = (organization: string, from: string, until: string) => `FROM meetings
  WHERE organization_id = ${organization}::uuid
    AND created_at >= ${from}::timestamptz AND created_at < ${until}::timestamptz`;

/** Members: memberships of users that are not deleted. */
const members = (organization: string) => `FROM memberships ms JOIN users u ON u.id = ms.user_id
  WHERE ms.organization_id = ${organization}::uuid AND u.deleted_at IS NULL`;

/**
 * Seats reserved by an add through our API while Clerk is asked: not expired, and not already a
 * membership (the membership is then the one counted).
 */
const seatReservations = (organization: string, now: string) => `FROM member_reservations r
  WHERE r.organization_id = ${organization}::uuid AND r.expires_at > ${now}::timestamptz
    AND NOT EXISTS (SELECT 1 FROM memberships ms JOIN users u ON u.id = ms.user_id
                     WHERE ms.organization_id = r.organization_id AND u.clerk_id = r.clerk_user_id)`;

/**
 * Stored bytes: every object of the organization minus those of its meetings deleted and not
 * purged yet. A deleted meeting's recordings stop counting when it is deleted: they are no
 * longer the customer's to use, and the purge that deletes their bytes STORAGE_PURGE_AFTER_DAYS
 * later is our housekeeping. (Counting them until the purge kept a storage violation that the
 * customer had resolved by deleting for longer than its grace, then enforced it.) The purge
 * marks a meeting purged only once all its objects are gone, so a purged meeting has none left.
 * Written as a difference so the big sum stays index-only over (organization_id, size_bytes);
 * the deleted meetings awaiting purge are a partial index's few rows.
 */
const storedBytes = (organization: string) =>
  `(SELECT COALESCE(SUM(size_bytes), 0)::bigint
      FROM storage_objects WHERE organization_id = ${organization}::uuid)
   - (SELECT COALESCE(SUM(o.size_bytes), 0)::bigint
        FROM meetings m
        JOIN storage_objects o ON o.meeting_id = m.id AND o.organization_id = m.organization_id
       WHERE m.organization_id = ${organization}::uuid
         AND m.deleted_at IS NOT NULL AND m.purged_at IS NULL)`;

export interface UsageWindow {
  organizationId: string;
  /** The month's first instant and the next month's (UTC). */
  monthStart: Date;
  nextMonthStart: Date;
  /** Reserved seats count while they have not expired by then. */
  now: Date;
}

export interface UsageRow {
  storageBytes: bigint;
  meetings: bigint;
  members: bigint;
}

/**
 * The organization's stored bytes, meetings of the month and members (with reserved seats), in
 * one aggregate statement: the whole truth, for reads and the violation check.
 */
export async function sumUsage(db: Db, input: UsageWindow): Promise<UsageRow> {
  const rows = await queryRows<{
    storage_bytes: bigint | string | null;
    meetings: bigint | string;
    members: bigint | string;
  }>(
    db,
    `SELECT ${storedBytes("$1")} AS storage_bytes,
            (SELECT count(*) ${meetingsOfMonth("$1", "$2", "$3")}) AS meetings,
            (SELECT count(*) ${members("$1")})
              + (SELECT count(*) ${seatReservations("$1", "$4")}) AS members`,
    [input.organizationId, input.monthStart, input.nextMonthStart, input.now],
  );
  const row = rows[0];
  return {
    storageBytes: BigInt(row?.storage_bytes ?? 0),
    meetings: BigInt(row?.meetings ?? 0),
    members: BigInt(row?.members ?? 0),
  };
}

/**
 * The month's meetings, counting at most `atMost` rows (null: all): what a limit decision needs,
 * whatever the organization's size. The ORDER BY is what the index on (organization_id,
 * created_at) gives for free; it keeps the planner on that index range: with a bare LIMIT, an
 * overestimate of the matching rows (an organization holding most of the table, months packed
 * together) makes a sequential scan that stops early look cheaper, and it reads the whole table.
 */
export async function countMeetingsOfMonth(
  db: SqlDb,
  input: Omit<UsageWindow, "now"> & { atMost: number | null },
): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    `SELECT count(*)::int AS n
       FROM (SELECT 1 ${meetingsOfMonth("$1", "$2", "$3")} ORDER BY created_at LIMIT $4::bigint) m`,
    [input.organizationId, input.monthStart, input.nextMonthStart, input.atMost],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Members plus reserved seats, counting at most `atMost` rows of each; ordered as their
 * (organization_id, ...) unique indexes are, for the reason given above.
 */
export async function countMembers(
  db: SqlDb,
  input: Pick<UsageWindow, "organizationId" | "now"> & { atMost: number | null },
): Promise<number> {
  const rows = await queryRows<{ n: number }>(
    db,
    `SELECT ((SELECT count(*)
                FROM (SELECT 1 ${members("$1")} ORDER BY ms.user_id LIMIT $3::bigint) m)
           + (SELECT count(*)
                FROM (SELECT 1 ${seatReservations("$1", "$2")}
                       ORDER BY r.clerk_user_id LIMIT $3::bigint) s))::int AS n`,
    [input.organizationId, input.now, input.atMost],
  );
  return rows[0]?.n ?? 0;
}
