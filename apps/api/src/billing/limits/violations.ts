import { isDeepStrictEqual } from "node:util";
import type { Db, PrismaClient } from "@zigznote/database";
import type { ErrorCode } from "@zigznote/shared";
import type { AdminNotice, Notices } from "../../notifications";
import { transaction } from "../../lib/afterCommit";
import { DAY_MS } from "../../lib/time";
import { getUsage } from "../../recordings";
import * as store from "./store";

type Usage = Awaited<ReturnType<typeof getUsage>>;

/**
 * Plan violations: where an organization's usage exceeds its plan's limits (typically after a
 * downgrade). The list lives on the organization (`planViolations`, `planViolationsAt`) so reads
 * and access checks need no recomputation, and as rows of `plan_violations` (one per violation,
 * from detection to resolution, with its events) for the admin console. `checkPlanViolations`
 * writes both, in one transaction under the organization's row lock: it runs on every plan
 * change, on member removal and on storage deletion, from the hourly job and when a platform
 * admin asks. A platform admin may extend a violation's grace or waive it until a date (admin
 * feature: it changes the row, then runs the check in the same transaction); the check keeps
 * both, and the write guard does not enforce a violation in grace or waived.
 */

export type ViolationType = "meetings" | "team_members" | "storage";
export type ViolationAction = "read_only" | "notify_admin" | "grace_period";

export interface PlanViolation {
  type: ViolationType;
  limit: number;
  current: number;
  action: ViolationAction;
  /** ISO time the violation was first detected; kept while it persists. */
  detectedAt: string;
  /**
   * When the grace period ends and the violation is enforced (storage from detection; any type
   * when a platform admin extended its grace).
   */
  graceEndsAt?: string;
  /** A platform admin's waiver: not enforced until then (still recorded and shown). */
  waivedUntil?: string;
}

export interface ViolationSettings {
  storageGraceDays: number;
  /** Where violation notices are queued (delivered after the commit by the outbox). */
  notices: Pick<Notices, "enqueue">;
}

export interface ViolationCheckResult {
  planSlug: string;
  violations: PlanViolation[];
  /** Types that were not violated before this check. */
  added: ViolationType[];
  /** Types that were violated before and no longer are. */
  resolved: ViolationType[];
}

/** The error code a refused write carries for each kind of limit. */
export const PLAN_LIMIT_CODES = {
  meetings: "PLAN_LIMIT_MEETINGS",
  team_members: "PLAN_LIMIT_TEAM_MEMBERS",
  storage: "PLAN_LIMIT_STORAGE",
} as const satisfies Record<ViolationType, ErrorCode>;

/** Parses the stored JSON leniently: unknown entries are dropped, never trusted. */
export function parseViolations(value: unknown): PlanViolation[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (entry): entry is PlanViolation =>
      typeof entry === "object" &&
      entry !== null &&
      typeof (entry as PlanViolation).type === "string" &&
      typeof (entry as PlanViolation).action === "string" &&
      typeof (entry as PlanViolation).detectedAt === "string",
  );
}

/** True when the storage violation's grace has run out by `now` (read-only from then on). */
export function isStorageGraceOver(violation: PlanViolation, now: Date): boolean {
  return (
    violation.type === "storage" &&
    (violation.action === "read_only" ||
      (violation.graceEndsAt !== undefined && new Date(violation.graceEndsAt) <= now))
  );
}

/** True while a platform admin's waiver of the violation is in force. */
export function isWaived(violation: PlanViolation, now: Date): boolean {
  return violation.waivedUntil !== undefined && new Date(violation.waivedUntil) > now;
}

/**
 * True when the write guard must leave the violation's limit alone at `now`: waived, or in a
 * grace period that has not ended.
 */
export function isEnforcementSuspended(violation: PlanViolation, now: Date): boolean {
  return (
    isWaived(violation, now) ||
    (violation.graceEndsAt !== undefined && new Date(violation.graceEndsAt) > now)
  );
}

/** What a violation of each type does once its grace (if any) is over. */
const ENFORCED_ACTION: Record<ViolationType, ViolationAction> = {
  meetings: "read_only",
  team_members: "notify_admin",
  storage: "read_only",
};

/** True for the client itself (a transaction client cannot open another transaction). */
export function isClient(db: Db): db is PrismaClient {
  return "$transaction" in db && typeof db.$transaction === "function";
}

/** What the violation checks need: the client or the caller's transaction, and the settings. */
export interface ViolationDeps {
  db: Db;
  settings: ViolationSettings;
}

export interface ViolationCheckInput {
  organizationId: string;
  now: Date;
}

/**
 * Compares usage with the plan's limits and records the result. Persisting violations keep
 * their `detectedAt` (and storage its `graceEndsAt`); resolved ones disappear; new ones and a
 * storage grace that ran out queue a notice to the admins in the same transaction. A fixed
 * number of statements whatever the organization's size: lock + limits, one usage aggregate,
 * and at most one update and one outbox insert.
 */
export async function checkPlanViolations(
  deps: ViolationDeps,
  input: ViolationCheckInput,
): Promise<ViolationCheckResult> {
  const { db, settings } = deps;
  if (isClient(db)) {
    return transaction(db, (tx) => runCheck(tx, input, settings));
  }
  return runCheck(db, input, settings);
}

async function runCheck(
  tx: Db,
  { organizationId, now }: ViolationCheckInput,
  settings: ViolationSettings,
): Promise<ViolationCheckResult> {
  const row = await store.lockOrganizationLimits(tx, { organizationId });
  if (!row) return { planSlug: "", violations: [], added: [], resolved: [] };
  const [usage, rows] = await Promise.all([
    getUsage(tx, organizationId, now),
    store.findUnresolvedViolationRows(tx, { organizationId }),
  ]);
  const previous = parseViolations(row.plan_violations);
  const previousByType = new Map(previous.map((violation) => [violation.type, violation]));
  const rowsByType = new Map(rows.map((violationRow) => [violationRow.type, violationRow]));
  const { violations, notices } = evaluateViolations(
    row,
    usage,
    recordedViolations(previous, rows),
    {
      organizationId,
      now,
      storageGraceDays: settings.storageGraceDays,
    },
  );

  const added = violations.filter((v) => !previousByType.has(v.type)).map((v) => v.type);
  const resolved = previous
    .filter((v) => !violations.some((current) => current.type === v.type))
    .map((v) => v.type);
  for (const type of resolved) {
    notices.push({
      organizationId,
      type: "plan.violation_resolved",
      payload: { planSlug: row.plan_slug, type },
      dedupeKey: `violation-resolved:${organizationId}:${type}:${previousByType.get(type)!.detectedAt}`,
    });
  }

  // jsonb reorders keys, so compare structurally (not as strings) to skip no-op writes.
  if (!isDeepStrictEqual(violations, previous)) {
    await store.updateViolations(tx, {
      organizationId,
      violations,
      checkedAt: violations.length > 0 ? now : null,
    });
  }
  await syncViolationRows(tx, { organizationId, now, violations, rowsByType });
  await settings.notices.enqueue(tx, notices);
  return { planSlug: row.plan_slug, violations, added, resolved };
}

/**
 * The violations as recorded: each type's `plan_violations` row (which a platform admin may
 * have changed: grace, waiver) when there is one, else the organization's copy.
 */
function recordedViolations(
  previous: PlanViolation[],
  rows: store.ViolationRow[],
): PlanViolation[] {
  const fromRows = rows.map(fromRow).filter((violation) => violation !== undefined);
  return [
    ...fromRows,
    ...previous.filter((violation) => !fromRows.some((row) => row.type === violation.type)),
  ];
}

type PlanLimits = Pick<
  store.OrganizationLimitsRow,
  "plan_slug" | "max_meetings_per_month" | "max_team_members" | "max_storage_bytes"
>;

/**
 * The violations of `usage` under a plan's limits, given those recorded before (which keep their
 * `detectedAt` and storage grace), and the notices new or escalated ones call for. Pure: the
 * check records the result, the preview only shows it.
 */
function evaluateViolations(
  row: PlanLimits,
  usage: Usage,
  previous: PlanViolation[],
  input: { organizationId: string; now: Date; storageGraceDays: number },
): { violations: PlanViolation[]; notices: AdminNotice[] } {
  const { organizationId, now } = input;
  const previousByType = new Map(previous.map((violation) => [violation.type, violation]));
  const candidates: { type: ViolationType; limit: number | null; current: number }[] = [
    { type: "meetings", limit: row.max_meetings_per_month, current: usage.meetingsThisMonth },
    { type: "team_members", limit: row.max_team_members, current: usage.activeMembers },
    {
      type: "storage",
      limit: row.max_storage_bytes === null ? null : Number(row.max_storage_bytes),
      current: Number(usage.storageBytes),
    },
  ];

  const violations: PlanViolation[] = [];
  const notices: AdminNotice[] = [];
  for (const { type, limit, current } of candidates) {
    if (limit === null || current <= limit) continue;
    // As recorded: the row (which an admin may have changed) where there is one.
    const before = previousByType.get(type);
    const detectedAt = before?.detectedAt ?? now.toISOString();
    const violation: PlanViolation = {
      type,
      limit,
      current,
      action: ENFORCED_ACTION[type],
      detectedAt,
    };
    const graceEndsAt =
      before?.graceEndsAt ??
      (type === "storage"
        ? new Date(now.getTime() + input.storageGraceDays * DAY_MS).toISOString()
        : undefined);
    if (graceEndsAt !== undefined) {
      violation.graceEndsAt = graceEndsAt;
      if (new Date(graceEndsAt) > now) violation.action = "grace_period";
    }
    if (before?.waivedUntil !== undefined) violation.waivedUntil = before.waivedUntil;
    violations.push(violation);
    if (!before || before.action !== violation.action) {
      // A grace names its end: a platform admin's grace after read-only, and read-only again
      // when it ends, are new steps of the same violation (same detectedAt) that the admins are
      // told of; without the end, their keys were those of the first grace and read-only, and
      // nothing was queued. A replayed check still finds the same key.
      const grace = graceEndsAt === undefined ? "" : `:${graceEndsAt}`;
      notices.push({
        organizationId,
        type: "plan.violation",
        payload: { planSlug: row.plan_slug, ...violation },
        dedupeKey: `violation:${organizationId}:${type}:${violation.action}:${detectedAt}${grace}`,
      });
    }
  }
  return { violations, notices };
}

/**
 * What `checkPlanViolations` would record if the organization were on `planSlug` now: the same
 * rules over the same usage, nothing written and nothing queued. Null for an unknown
 * organization or plan.
 */
export async function previewPlanViolations(
  deps: { db: Db; settings: Pick<ViolationSettings, "storageGraceDays"> },
  input: ViolationCheckInput & { planSlug: string },
): Promise<PlanViolation[] | null> {
  const { db } = deps;
  const { organizationId, now } = input;
  const row = await store.findLimitsUnderPlan(db, { organizationId, planSlug: input.planSlug });
  if (!row) return null;
  const [usage, rows] = await Promise.all([
    getUsage(db, organizationId, now),
    store.findUnresolvedViolationRows(db, { organizationId }),
  ]);
  return evaluateViolations(
    row,
    usage,
    recordedViolations(parseViolations(row.plan_violations), rows),
    {
      organizationId,
      now,
      storageGraceDays: deps.settings.storageGraceDays,
    },
  ).violations;
}

/**
 * For the hourly job: queues "storage grace ending in 24 h" for each organization whose storage
 * grace period ends within `windowMs` of `now` (once per grace period: the dedupe key names its
 * end). Returns the organizations told.
 */
export async function warnStorageGraceEnding(
  deps: { db: PrismaClient; settings: ViolationSettings },
  input: { now: Date; windowMs?: number },
): Promise<string[]> {
  const until = new Date(input.now.getTime() + (input.windowMs ?? DAY_MS));
  return transaction(deps.db, async (tx) => {
    const rows = await store.findStorageGraceEnding(tx, { now: input.now, until });
    await deps.settings.notices.enqueue(
      tx,
      rows.map((row) => ({
        organizationId: row.id,
        type: "plan.storage_grace_ending",
        payload: {
          planSlug: row.plan_slug,
          limit: row.violation.limit,
          current: row.violation.current,
          graceEndsAt: row.violation.graceEndsAt,
        },
        dedupeKey: `storage-grace-ending:${row.id}:${String(row.violation.graceEndsAt)}`,
      })),
    );
    return rows.map((row) => row.id);
  });
}

/** A row as the organization's copy would hold it. */
function fromRow(row: store.ViolationRow | undefined): PlanViolation | undefined {
  if (!row) return undefined;
  return {
    type: row.type as ViolationType,
    action: row.action as ViolationAction,
    limit: Number(row.limit_value),
    current: Number(row.current_usage),
    detectedAt: row.detected_at.toISOString(),
    ...(row.grace_ends_at ? { graceEndsAt: row.grace_ends_at.toISOString() } : {}),
    ...(row.waived_until ? { waivedUntil: row.waived_until.toISOString() } : {}),
  };
}

/**
 * Brings the organization's `plan_violations` rows in step with `violations`: new ones
 * inserted, changed ones updated (version bumped), gone ones resolved; each with its event. At
 * most one statement per type.
 */
async function syncViolationRows(
  tx: Db,
  input: {
    organizationId: string;
    now: Date;
    violations: PlanViolation[];
    rowsByType: Map<string, store.ViolationRow>;
  },
): Promise<void> {
  const { organizationId, now, violations, rowsByType } = input;
  for (const violation of violations) {
    const existing = rowsByType.get(violation.type);
    const write = {
      type: violation.type,
      action: violation.action,
      limit: violation.limit,
      current: violation.current,
      detectedAt: new Date(violation.detectedAt),
      graceEndsAt: violation.graceEndsAt ? new Date(violation.graceEndsAt) : null,
    };
    if (!existing) {
      await store.insertViolationRow(tx, { organizationId, now, ...write });
      continue;
    }
    const isActionChanged = existing.action !== write.action;
    const isChanged =
      isActionChanged ||
      Number(existing.limit_value) !== write.limit ||
      Number(existing.current_usage) !== write.current ||
      (existing.grace_ends_at?.getTime() ?? null) !== (write.graceEndsAt?.getTime() ?? null);
    if (isChanged) {
      await store.updateViolationRow(tx, {
        id: existing.id,
        now,
        event: isActionChanged ? "action_changed" : "usage_changed",
        ...write,
      });
    }
  }
  const goneIds = [...rowsByType.values()]
    .filter((existing) => !violations.some((violation) => violation.type === existing.type))
    .map((existing) => existing.id);
  await store.resolveViolationRows(tx, { ids: goneIds, now });
}

/**
 * For the hourly job: re-checks every organization whose storage grace has run out (it turns
 * read-only, with a notice) and every organization with a recorded violation, so that a
 * violation resolved by time (a new month) is cleared. Returns how many were checked.
 */
export async function recheckRecordedViolations(
  deps: ViolationDeps,
  input: { now: Date },
): Promise<number> {
  const organizationIds = await store.findOrganizationIdsWithViolations(deps.db);
  for (const organizationId of organizationIds) {
    await checkPlanViolations(deps, { organizationId, now: input.now });
  }
  return organizationIds.length;
}

/**
 * For the hourly job: turns storage violations whose grace period is over into read-only
 * (through `checkPlanViolations`, which also notifies). Returns the organizations escalated.
 */
export async function escalateExpiredStorageGrace(
  deps: ViolationDeps,
  input: { now: Date },
): Promise<string[]> {
  const organizationIds = await store.findOrganizationIdsWithExpiredStorageGrace(deps.db, input);
  for (const organizationId of organizationIds) {
    await checkPlanViolations(deps, { organizationId, now: input.now });
  }
  return organizationIds;
}
