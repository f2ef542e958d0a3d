import type { Db } from "@zigznote/database";
import * as store from "./store";

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
  const usage = await store.sumUsage(db, { organizationId, monthStart: startOfUtcMonth(now) });
  return {
    storageBytes: usage.storageBytes,
    meetingsThisMonth: Number(usage.meetings),
    activeMembers: Number(usage.members),
  };
}
