import {
  queryRows,
  type Db,
  type PrismaClient,
  type RecordingImport,
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

/** True when the organization has this live (not deleted) meeting. */
export async function hasLiveMeeting(db: Db, key: RecordingMeetingKey): Promise<boolean> {
  const meeting = await db.meeting.findFirst({
    where: { id: key.meetingId, organizationId: key.organizationId, deletedAt: null },
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
 * Inserts the import, due at `now`, unless one exists for the same provider recording (unique).
 * The new row's id, or null when there was one already.
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
    ON CONFLICT (provider, external_id) DO NOTHING
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

export async function markImportDone(
  db: Db,
  input: { id: string; storageObjectId: string },
): Promise<void> {
  await db.recordingImport.update({
    where: { id: input.id },
    data: { status: "done", storageObjectId: input.storageObjectId, lastError: null },
  });
}

/** Records a failed attempt: retried at `nextAttemptAt`, or given up (`failed`). */
export async function markImportAttemptFailed(
  db: Db,
  input: { id: string; isExhausted: boolean; lastError: string; nextAttemptAt: Date },
): Promise<void> {
  await db.recordingImport.update({
    where: { id: input.id },
    data: {
      status: input.isExhausted ? "failed" : "pending",
      lastError: input.lastError,
      nextAttemptAt: input.nextAttemptAt,
    },
  });
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

/** Meetings deleted before `cutoff` and not purged yet (minus `excluded`), oldest deletion first. */
export async function findPurgeableMeetingIds(
  db: Db,
  input: { cutoff: Date; excluded: string[]; limit: number },
): Promise<string[]> {
  const meetings = await db.meeting.findMany({
    where: { deletedAt: { lt: input.cutoff }, purgedAt: null, id: { notIn: input.excluded } },
    select: { id: true },
    orderBy: { deletedAt: "asc" },
    take: input.limit,
  });
  return meetings.map((meeting) => meeting.id);
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

export interface UsageRow {
  storageBytes: bigint;
  meetings: bigint;
  members: bigint;
}

/**
 * The organization's stored bytes, meetings created since `monthStart` (deleted ones too) and
 * members whose user is not deleted, in one aggregate statement.
 */
export async function sumUsage(
  db: Db,
  input: { organizationId: string; monthStart: Date },
): Promise<UsageRow> {
  const { organizationId, monthStart } = input;
  const rows = await db.$queryRaw<
    { storage_bytes: bigint | null; meetings: bigint; members: bigint }[]
  >`
    SELECT
      -- Purging deletes a meeting's objects in the same transaction that sets purged_at, so
      -- the objects that exist are exactly those of unpurged meetings: an index-only sum.
      (SELECT COALESCE(SUM(size_bytes), 0)::bigint FROM storage_objects
        WHERE organization_id = ${organizationId}::uuid) AS storage_bytes,
      (SELECT count(*) FROM meetings
        WHERE organization_id = ${organizationId}::uuid AND created_at >= ${monthStart}) AS meetings,
      (SELECT count(*) FROM memberships ms JOIN users u ON u.id = ms.user_id
        WHERE ms.organization_id = ${organizationId}::uuid AND u.deleted_at IS NULL) AS members`;
  const row = rows[0];
  return {
    storageBytes: row?.storage_bytes ?? 0n,
    meetings: row?.meetings ?? 0n,
    members: row?.members ?? 0n,
  };
}
