import type { Db } from "@zigznote/database";

/** What an organization uses now, measured against its plan's limits. */
export interface Usage {
  /** Bytes of the stored objects; a deleted meeting's count until its storage is purged. */
  storageBytes: bigint;
  /** Meetings created since the start of the current UTC month (deleted ones still count). */
  meetingsThisMonth: number;
  /** Members whose user has not been deleted. */
  activeMembers: number;
}

/** The first instant of `now`'s UTC month. */
export function startOfUtcMonth(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/**
 * Usage computed from the rows themselves, never from a counter that something must remember to
 * update: one aggregate statement, whatever the organization's size. Billing and the
 * organization endpoint both read it from here.
 */
export async function getUsage(db: Db, organizationId: string, now: Date): Promise<Usage> {
  const monthStart = startOfUtcMonth(now);
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
    meetingsThisMonth: Number(row?.meetings ?? 0n),
    activeMembers: Number(row?.members ?? 0n),
  };
}
