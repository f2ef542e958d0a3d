import { isDeepStrictEqual } from "node:util";
import type { Db, PrismaClient } from "@zigznote/database";
import type { ErrorCode } from "@zigznote/shared";
import type { AdminNotice, Notices } from "../notifications";
import { transaction } from "../lib/afterCommit";
import { DAY_MS } from "../lib/time";
import { getUsage } from "../recordings";
import * as store from "./store";

type Usage = Awaited<ReturnType<typeof getUsage>>;

/**
 * Plan violations: where an organization's usage exceeds its plan's limits (typically after a
 * downgrade). The list lives on the organization (`planViolations`, `planViolationsAt`) so reads
 * and access checks need no recomputation. `checkPlanViolations` is the only writer: it runs on
 * every plan change, on member removal and on storage deletion, and from the hourly job.
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
  /** Storage only: when the grace period ends and the organization turns read-only. */
  graceEndsAt?: string;
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
  const usage = await getUsage(tx, organizationId, now);
  const previous = parseViolations(row.plan_violations);
  const previousByType = new Map(previous.map((violation) => [violation.type, violation]));
  const { violations, notices } = evaluateViolations(row, usage, previous, {
    organizationId,
    now,
    storageGraceDays: settings.storageGraceDays,
  });

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
  await settings.notices.enqueue(tx, notices);
  return { planSlug: row.plan_slug, violations, added, resolved };
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
    const before = previousByType.get(type);
    const detectedAt = before?.detectedAt ?? now.toISOString();
    const violation: PlanViolation = { type, limit, current, action: "read_only", detectedAt };
    if (type === "team_members") violation.action = "notify_admin";
    if (type === "storage") {
      violation.graceEndsAt =
        before?.graceEndsAt ??
        new Date(now.getTime() + input.storageGraceDays * DAY_MS).toISOString();
      violation.action = new Date(violation.graceEndsAt) <= now ? "read_only" : "grace_period";
    }
    violations.push(violation);
    if (!before || before.action !== violation.action) {
      notices.push({
        organizationId,
        type: "plan.violation",
        payload: { planSlug: row.plan_slug, ...violation },
        dedupeKey: `violation:${organizationId}:${type}:${violation.action}:${detectedAt}`,
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
  const usage = await getUsage(db, organizationId, now);
  return evaluateViolations(row, usage, parseViolations(row.plan_violations), {
    organizationId,
    now,
    storageGraceDays: deps.settings.storageGraceDays,
  }).violations;
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
