import { runLastStatement, type Db, type Prisma } from "@zigznote/database";
import { BadRequestError, ConflictError, NotFoundError } from "@zigznote/shared";
import {
  checkPlanViolations,
  compSubscription,
  extendViolationGrace,
  lockOrganization,
  waiveViolation as waiveBillingViolation,
} from "../billing";
import type { z } from "../http/openapi";
import { afterCommit, transaction } from "../lib/afterCommit";
import { DAY_MS } from "../lib/time";
import type { TransactionBracket } from "../lib/transactionHooks";
import { requeueNotice } from "../notifications";
import * as auditStore from "./auditStore";
import type { AdminDeps } from "./deps";
import type {
  JobRunResultSchema,
  NoticeActionResultSchema,
  RecheckResultSchema,
  SubscriptionActionResultSchema,
  ViolationActionResultSchema,
} from "./actionSchemas";
import type { AuditAction, AuditTargetType } from "./schemas";
import { serializeNotice, serializeSubscription, serializeViolation } from "./serializers";
import * as store from "./store";

/**
 * Platform admins' actions. Each runs in one transaction that makes the change and appends one
 * audit entry (who, what, target, reason, before, after), so an action is recorded exactly when
 * it took effect. The change itself is made by the feature that owns the row (billing's
 * violations and subscriptions, the notifications outbox), through its functions, with the
 * action's transaction; admin writes only its audit log. Edits of a versioned target (a
 * violation, a subscription) first take billing's lock of the organization (the lock billing's
 * checks take, so they serialize) and compare the version the operator saw: a stale one answers
 * 409 VERSION_CONFLICT and changes nothing. Running a job is the exception: the job commits its
 * own work, so who asked is recorded with the run's claim, before the job starts, and the
 * outcome in a second entry after it (`runJobNow`).
 */

interface Actor {
  actorUserId: string;
  reason: string;
}

function versionConflict(
  target: AuditTargetType,
  expectedVersion: number,
  currentVersion: number,
): ConflictError {
  return new ConflictError(
    `The ${target} changed since it was read (version ${currentVersion}, not ${expectedVersion}): reload and retry`,
    { code: "VERSION_CONFLICT", details: { expectedVersion, currentVersion } },
  );
}

function audit(
  tx: Prisma.TransactionClient,
  entry: Actor & {
    action: AuditAction;
    targetType: AuditTargetType;
    targetId: string;
    organizationId: string | null;
    before: unknown;
    after: unknown;
    createdAt: Date;
  },
): Promise<string> {
  return auditStore.insertAuditEntry(tx, entry);
}

const violationNotFound = () =>
  new NotFoundError("Violation not found", { code: "VIOLATION_NOT_FOUND" });
const organizationNotFound = () =>
  new NotFoundError("Organization not found", { code: "ORGANIZATION_NOT_FOUND" });

/**
 * Locks the violation's organization, then reads the violation fresh and checks it can be
 * edited at `expectedVersion`.
 */
async function lockViolationForEdit(
  tx: Prisma.TransactionClient,
  input: { violationId: string; expectedVersion: number },
): Promise<store.ViolationListRow> {
  const seen = await store.findViolation(tx, { id: input.violationId });
  if (!seen) throw violationNotFound();
  await lockOrganization(tx, { organizationId: seen.organization_id });
  const current = await store.findViolation(tx, { id: input.violationId, lock: true });
  if (!current) throw violationNotFound();
  if (current.resolved_at !== null) {
    throw new ConflictError("The violation is resolved: there is nothing to enforce", {
      code: "VIOLATION_RESOLVED",
      details: { resolvedAt: current.resolved_at.toISOString() },
    });
  }
  if (current.version !== input.expectedVersion) {
    throw versionConflict("violation", input.expectedVersion, current.version);
  }
  return current;
}

type ViolationActionResult = z.infer<typeof ViolationActionResultSchema>;

/** `result`, after the bracket's last statement ran in the action's transaction (an idempotent answer). */
async function finish<T>(
  tx: Db,
  result: T,
  bracket: TransactionBracket<T> | undefined,
): Promise<T> {
  if (bracket) await runLastStatement(tx, bracket, result);
  return result;
}

async function editViolation(
  deps: AdminDeps,
  input: Actor & { violationId: string; expectedVersion: number } & (
      { graceEndsAt: Date } | { waivedUntil: Date }
    ),
  bracket?: TransactionBracket<ViolationActionResult>,
): Promise<ViolationActionResult> {
  const now = deps.clock.now();
  const isGrace = "graceEndsAt" in input;
  const until = isGrace ? input.graceEndsAt : input.waivedUntil;
  if (until <= now) {
    throw new BadRequestError(`${isGrace ? "graceEndsAt" : "until"} must be in the future`, {
      code: "DATE_IN_PAST",
      details: { [isGrace ? "graceEndsAt" : "until"]: until.toISOString(), now: now.toISOString() },
    });
  }
  return transaction(deps.db, async (tx) => {
    const before = await lockViolationForEdit(tx, input);
    if (isGrace && before.grace_ends_at !== null && input.graceEndsAt <= before.grace_ends_at) {
      throw new BadRequestError("graceEndsAt must be later than the current grace end", {
        code: "GRACE_NOT_EXTENDED",
        details: { graceEndsAt: before.grace_ends_at.toISOString() },
      });
    }
    // Billing records the override and re-checks the organization in this transaction, so the
    // organization's copy (what the write guard reads) and the action are in step.
    const billing = { db: tx, settings: deps.violations };
    const override = {
      violationId: input.violationId,
      organizationId: before.organization_id,
      expectedVersion: input.expectedVersion,
      now,
      actorUserId: input.actorUserId,
      reason: input.reason,
    };
    const isUpdated = isGrace
      ? await extendViolationGrace(billing, { ...override, graceEndsAt: input.graceEndsAt })
      : await waiveBillingViolation(billing, { ...override, waivedUntil: input.waivedUntil });
    // Cannot happen under the organization's lock; kept so that no path overwrites silently.
    if (!isUpdated) throw versionConflict("violation", input.expectedVersion, before.version + 1);
    const after = await store.findViolation(tx, { id: input.violationId });
    if (!after) throw violationNotFound();
    const auditId = await audit(tx, {
      actorUserId: input.actorUserId,
      reason: input.reason,
      action: isGrace ? "violation.extend_grace" : "violation.waive",
      targetType: "violation",
      targetId: before.id,
      organizationId: before.organization_id,
      before: serializeViolation(before, now),
      after: serializeViolation(after, now),
      createdAt: now,
    });
    return finish(tx, { violation: serializeViolation(after, now), auditId }, bracket);
  });
}

/** Extends a violation's grace: it is not enforced until `graceEndsAt` (later than before). */
export function extendGrace(
  deps: AdminDeps,
  input: Actor & { violationId: string; expectedVersion: number; graceEndsAt: Date },
  bracket?: TransactionBracket<ViolationActionResult>,
): Promise<ViolationActionResult> {
  return editViolation(deps, input, bracket);
}

/** Waives a violation until `until`: not enforced meanwhile, still recorded and shown. */
export function waiveViolation(
  deps: AdminDeps,
  input: Actor & { violationId: string; expectedVersion: number; until: Date },
  bracket?: TransactionBracket<ViolationActionResult>,
): Promise<ViolationActionResult> {
  const { until, ...rest } = input;
  return editViolation(deps, { ...rest, waivedUntil: until }, bracket);
}

/** Runs billing's violation check for the organization now. */
export async function recheckViolations(
  deps: AdminDeps,
  input: Actor & { organizationId: string },
  bracket?: TransactionBracket<z.infer<typeof RecheckResultSchema>>,
): Promise<z.infer<typeof RecheckResultSchema>> {
  const now = deps.clock.now();
  const { organizationId } = input;
  return transaction(deps.db, async (tx) => {
    if (!(await lockOrganization(tx, { organizationId }))) throw organizationNotFound();
    const unresolved = (rows: store.ViolationListRow[]) =>
      rows.filter((row) => row.resolved_at === null).map((row) => serializeViolation(row, now));
    const before = unresolved(
      await store.findOrganizationViolations(tx, { organizationId, limit: 10 }),
    );
    const result = await checkPlanViolations(
      { db: tx, settings: deps.violations },
      { organizationId, now },
    );
    const after = unresolved(
      await store.findOrganizationViolations(tx, { organizationId, limit: 10 }),
    );
    const auditId = await audit(tx, {
      actorUserId: input.actorUserId,
      reason: input.reason,
      action: "organization.recheck_violations",
      targetType: "organization",
      targetId: organizationId,
      organizationId,
      before: { violations: before },
      after: { violations: after, added: result.added, resolved: result.resolved },
      createdAt: now,
    });
    return finish(
      tx,
      {
        organizationId,
        violations: after,
        added: result.added,
        resolved: result.resolved,
        auditId,
      },
      bracket,
    );
  });
}

/** Puts a sent or failed notice back in the outbox; it is delivered after the commit. */
export async function resendNotice(
  deps: AdminDeps,
  input: Actor & { noticeId: string },
  bracket?: TransactionBracket<z.infer<typeof NoticeActionResultSchema>>,
): Promise<z.infer<typeof NoticeActionResultSchema>> {
  const now = deps.clock.now();
  return transaction(deps.db, async (tx) => {
    const before = await store.lockNotice(tx, { id: input.noticeId });
    if (!before) throw new NotFoundError("Notice not found", { code: "NOTICE_NOT_FOUND" });
    const isRequeued = before.status !== "pending" && (await requeueNotice(tx, { id: before.id }));
    const after = isRequeued ? await store.lockNotice(tx, { id: before.id }) : null;
    if (!after) {
      throw new ConflictError("The notice is still waiting to be sent", {
        code: "NOTICE_PENDING",
        details: { attempts: before.attempts },
      });
    }
    const auditId = await audit(tx, {
      actorUserId: input.actorUserId,
      reason: input.reason,
      action: "notice.resend",
      targetType: "notice",
      targetId: before.id,
      organizationId: before.organization_id,
      before: serializeNotice(before),
      after: serializeNotice(after),
      createdAt: now,
    });
    afterCommit(() => deps.notices.deliver());
    return finish(tx, { notice: serializeNotice(after), auditId }, bracket);
  });
}

/**
 * Comps a suspended subscription for `days`: the write guard lets the organization write until
 * then. The subscription stays suspended (a payment restores it as usual); after the comp the
 * usual rules apply again.
 */
export async function liftSuspension(
  deps: AdminDeps,
  input: Actor & { organizationId: string; expectedVersion: number; days: number },
  bracket?: TransactionBracket<z.infer<typeof SubscriptionActionResultSchema>>,
): Promise<z.infer<typeof SubscriptionActionResultSchema>> {
  const now = deps.clock.now();
  const { organizationId } = input;
  return transaction(deps.db, async (tx) => {
    if (!(await lockOrganization(tx, { organizationId }))) throw organizationNotFound();
    const before = await store.lockSuspendedSubscription(tx, { organizationId });
    if (!before) {
      throw new ConflictError("The organization has no suspended subscription", {
        code: "NOT_SUSPENDED",
      });
    }
    if (before.version !== input.expectedVersion) {
      throw versionConflict("subscription", input.expectedVersion, before.version);
    }
    const isComped = await compSubscription(tx, {
      id: before.id,
      expectedVersion: input.expectedVersion,
      compUntil: new Date(now.getTime() + input.days * DAY_MS),
      now,
    });
    const after = isComped ? await store.findSubscription(tx, { id: before.id }) : null;
    if (!after) throw versionConflict("subscription", input.expectedVersion, before.version + 1);
    const auditId = await audit(tx, {
      actorUserId: input.actorUserId,
      reason: input.reason,
      action: "subscription.lift_suspension",
      targetType: "subscription",
      targetId: before.id,
      organizationId,
      before: serializeSubscription(before),
      after: { ...serializeSubscription(after), days: input.days },
      createdAt: now,
    });
    return finish(tx, { subscription: serializeSubscription(after), auditId }, bracket);
  });
}

/** The request's entry of a run asked for in the console: the run as it started. */
interface RequestedRun {
  auditId: string;
  status: "running";
  runId: string;
  startedAt: string;
}

/**
 * Runs a job now through the runner (one run at a time across instances). Who asked is
 * recorded before the job starts, in the transaction that claims the run (`job.run_requested`):
 * no run happens without that entry, whether it fails, its instance dies during it, or its end
 * cannot be recorded. The outcome is a second entry (`job.run`, whose `before` is the request)
 * once it ends: the log is append-only, so the first entry is never edited. A run refused
 * because another is under way (409) claims nothing and writes nothing.
 */
export async function runJobNow(
  deps: AdminDeps,
  input: Actor & { jobName: string },
  bracket?: TransactionBracket<z.infer<typeof JobRunResultSchema>>,
): Promise<z.infer<typeof JobRunResultSchema>> {
  if (!deps.jobs.list().some((job) => job.name === input.jobName)) {
    throw new NotFoundError(`No job is named ${input.jobName}`, {
      code: "JOB_NOT_FOUND",
      details: { jobs: deps.jobs.list().map((job) => job.name) },
    });
  }
  const requests: RequestedRun[] = [];
  const outcome = await deps.jobs.run(input.jobName, {
    onClaimed: async (tx, run) => {
      const requested = {
        status: "running" as const,
        runId: run.runId,
        startedAt: run.startedAt.toISOString(),
      };
      const auditId = await audit(tx, {
        actorUserId: input.actorUserId,
        reason: input.reason,
        action: "job.run_requested",
        targetType: "job",
        targetId: input.jobName,
        organizationId: null,
        before: null,
        after: requested,
        createdAt: run.startedAt,
      });
      requests.push({ auditId, ...requested });
    },
  });
  if (!outcome)
    throw new NotFoundError(`No job is named ${input.jobName}`, { code: "JOB_NOT_FOUND" });
  if (outcome.status === "skipped") {
    throw new ConflictError("A run of this job is in progress (or ran this very instant)", {
      code: "JOB_ALREADY_RUNNING",
      details: { reason: outcome.reason },
    });
  }
  const [request] = requests;
  // The runner claims a run (and so calls onClaimed) before it runs anything.
  if (!request) throw new Error(`the run ${outcome.runId} of ${input.jobName} was not claimed`);
  const result = {
    status: outcome.status,
    runId: outcome.runId,
    rowsAffected: outcome.status === "succeeded" ? outcome.rowsAffected : null,
    error: outcome.status === "failed" ? outcome.error : null,
  };
  const finishedAt = deps.clock.now();
  // The log lists entries by time (then id): a run ending within the millisecond it started
  // still lists its outcome above its request.
  const recordedAt = new Date(Math.max(finishedAt.getTime(), Date.parse(request.startedAt) + 1));
  return transaction(deps.db, async (tx) => {
    const { auditId: requestAuditId, ...requested } = request;
    const auditId = await audit(tx, {
      actorUserId: input.actorUserId,
      reason: input.reason,
      action: "job.run",
      targetType: "job",
      targetId: input.jobName,
      organizationId: null,
      before: { requestAuditId, ...requested },
      after: { ...result, startedAt: requested.startedAt, finishedAt: finishedAt.toISOString() },
      createdAt: recordedAt,
    });
    return finish(tx, { outcome: result, auditId }, bracket);
  });
}
