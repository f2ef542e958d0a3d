import type { Db, SqlDb } from "@zigznote/database";
import * as store from "./store";

/**
 * What an organization uses, measured against its plan's limits. One definition (the SQL
 * fragments in `store.ts`) for every reader: the organization endpoint, the violation check, the
 * plan-change preview, the console, and the write guard, which counts the same rows but stops
 * at what its decision needs.
 */
export interface Usage {
  /** Bytes of the live meetings' stored objects: a deleted meeting's stop counting at once. */
  storageBytes: bigint;
  /** Meetings created in the current UTC month (deleted and purged ones still count). */
  meetingsThisMonth: number;
  /** Members whose user has not been deleted, plus seats reserved by adds in progress. */
  activeMembers: number;
}

/** The first instant of `now`'s UTC month. */
export function startOfUtcMonth(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/** The first instant of the UTC month after `now`'s. */
export function startOfNextUtcMonth(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1));
}

function monthOf(now: Date): { monthStart: Date; nextMonthStart: Date } {
  return { monthStart: startOfUtcMonth(now), nextMonthStart: startOfNextUtcMonth(now) };
}

/**
 * Usage computed from the rows themselves, never from a counter that something must remember to
 * update: one aggregate statement. For reads and checks, not for a create's guard (which counts
 * at most what it needs: `countMeetingsThisMonth`, `countActiveMembers`).
 */
export async function getUsage(db: Db, organizationId: string, now: Date): Promise<Usage> {
  const usage = await store.sumUsage(db, { organizationId, now, ...monthOf(now) });
  return {
    storageBytes: usage.storageBytes,
    meetingsThisMonth: Number(usage.meetings),
    activeMembers: Number(usage.members),
  };
}

/**
 * The meetings of `now`'s month as `getUsage` counts them, but stopping at `atMost` rows (none:
 * all of them). A limit decision reads `limit + 1` rows at most, whatever the organization's size.
 */
export function countMeetingsThisMonth(
  db: SqlDb,
  input: { organizationId: string; now: Date; atMost?: number },
): Promise<number> {
  return store.countMeetingsOfMonth(db, {
    organizationId: input.organizationId,
    ...monthOf(input.now),
    atMost: input.atMost ?? null,
  });
}

/** The members (and reserved seats) as `getUsage` counts them, stopping at `atMost` of each. */
export function countActiveMembers(
  db: SqlDb,
  input: { organizationId: string; now: Date; atMost?: number },
): Promise<number> {
  return store.countMembers(db, {
    organizationId: input.organizationId,
    now: input.now,
    atMost: input.atMost ?? null,
  });
}
