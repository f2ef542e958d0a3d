import { NotFoundError } from "@zigznote/shared";
import { getBillingDetails, listOrganizationDisputes, summarizeOpenDisputes } from "../billing";
import type { z } from "../http/openapi";
import { DAY_MS, HOUR_MS } from "../lib/time";
import { getUsage } from "../recordings";
import { decodeCursor, encodeCursor, toPage } from "../lib/cursor";
import { isUuid } from "../lib/ids";
import type { AdminDeps } from "./deps";
import type {
  AdminAuditLogSchema,
  AdminJobRunListSchema,
  AdminOrganizationDetail,
  AdminOrganizationListSchema,
  AdminOrganizationSummary,
  AdminOverview,
  AdminViolationListSchema,
  ListAuditLogQuery,
  ListJobRunsQuery,
  ListViolationsQuery,
  SearchOrganizationsQuery,
} from "./schemas";
import {
  serializeAuditEntry,
  serializeJobRun,
  serializeNotice,
  serializeSubscription,
  serializeUser,
  serializeViolation,
} from "./serializers";
import * as auditStore from "./auditStore";
import * as overviewStore from "./overviewStore";
import * as store from "./store";

/**
 * The console's reads. Each answers with a fixed number of queries whatever the data (the
 * `bench:admin` benchmark counts them), each one indexed: pages are keyset pages, and the only
 * figure that reads every organization is the overview's count by plan and status (an
 * index-only scan).
 */

const OVERVIEW_DAYS = 30;
const OVERVIEW_DISPUTES = 10;

/** `q` as an organization match: an id, or the start of a name. */
function organizationMatch(q: string | undefined): { id: string } | { prefix: string } | undefined {
  if (q === undefined) return undefined;
  return isUuid(q) ? { id: q.toLowerCase() } : { prefix: q };
}

function startOfUtcDay(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

function rate(succeeded: bigint, finished: bigint): number | null {
  return finished === 0n ? null : Number(succeeded) / Number(finished);
}

/** `GET /admin/overview`: nine queries, run side by side. */
export async function getOverview(deps: AdminDeps): Promise<AdminOverview> {
  const { db } = deps;
  const now = deps.clock.now();
  const since = new Date(startOfUtcDay(now).getTime() - (OVERVIEW_DAYS - 1) * DAY_MS);
  const jobNames = deps.jobs.list().map((job) => job.name);
  const [organizations, violations, perDay, dunning, notices, jobRuns, failures, disputes] =
    await Promise.all([
      overviewStore.countOrganizations(db),
      overviewStore.countUnresolvedViolations(db, { now }),
      overviewStore.countViolationsPerDay(db, { since }),
      overviewStore.countDunning(db, {
        now,
        in24h: new Date(now.getTime() + 24 * HOUR_MS),
        in7d: new Date(now.getTime() + 7 * DAY_MS),
      }),
      overviewStore.countNotices(db, { sentSince: since }),
      overviewStore.summarizeJobRuns(db, {
        since24h: new Date(now.getTime() - 24 * HOUR_MS),
        since7d: new Date(now.getTime() - 7 * DAY_MS),
      }),
      overviewStore.findLastFailures(db, { jobNames }),
      summarizeOpenDisputes(db, { limit: OVERVIEW_DISPUTES }),
    ]);

  const byPlan = new Map<string, AdminOverview["organizations"]["byPlan"][number]>();
  const byStatus = new Map<"active" | "deleted", number>();
  for (const row of organizations) {
    const count = Number(row.count);
    const plan = byPlan.get(row.plan_slug) ?? {
      planSlug: row.plan_slug,
      count: 0,
      byStatus: { active: 0, deleted: 0 },
    };
    plan.count += count;
    plan.byStatus[row.status] += count;
    byPlan.set(row.plan_slug, plan);
    byStatus.set(row.status, (byStatus.get(row.status) ?? 0) + count);
  }

  const open = new Map<string, AdminOverview["violations"]["open"][number]>();
  let waived = 0;
  for (const row of violations) {
    if (row.is_waived) {
      waived += Number(row.count);
      continue;
    }
    const key = `${row.type}:${row.action}`;
    const entry = open.get(key) ?? {
      type: row.type as AdminOverview["violations"]["open"][number]["type"],
      action: row.action as AdminOverview["violations"]["open"][number]["action"],
      count: 0,
    };
    entry.count += Number(row.count);
    open.set(key, entry);
  }

  const days = new Map(perDay.map((row) => [row.day.toISOString().slice(0, 10), row]));
  const overTime = Array.from({ length: OVERVIEW_DAYS }, (_, index) => {
    const day = new Date(since.getTime() + index * DAY_MS).toISOString().slice(0, 10);
    const row = days.get(day);
    return { day, detected: Number(row?.detected ?? 0), resolved: Number(row?.resolved ?? 0) };
  });

  const noticeCounts = new Map(notices.map((row) => [row.status, Number(row.count)]));
  const runsByJob = new Map(jobRuns.map((row) => [row.job_name, row]));
  const failureByJob = new Map(failures.map((row) => [row.job_name, row]));
  // Known jobs first (in schedule order), then any other name found in the runs.
  const names = [
    ...jobNames,
    ...jobRuns.map((row) => row.job_name).filter((name) => !jobNames.includes(name)),
  ];

  return {
    organizations: {
      total: [...byStatus.values()].reduce((sum, count) => sum + count, 0),
      byPlan: [...byPlan.values()],
      byStatus: [...byStatus].map(([status, count]) => ({ status, count })),
    },
    violations: { open: [...open.values()], waived, overTime },
    subscriptions: {
      pastDue: Number(dunning.past_due),
      suspended: Number(dunning.suspended),
      comped: Number(dunning.comped),
      graceEndingIn24h: Number(dunning.grace_24h),
      graceEndingIn7d: Number(dunning.grace_7d),
    },
    notices: {
      pending: noticeCounts.get("pending") ?? 0,
      sent: noticeCounts.get("sent") ?? 0,
      failed: noticeCounts.get("failed") ?? 0,
    },
    disputes: {
      open: disputes.open,
      needsResponse: disputes.needsResponse,
      evidenceDueFirst: disputes.soonest,
    },
    jobs: names.map((jobName) => {
      const runs = runsByJob.get(jobName);
      const failure = failureByJob.get(jobName);
      return {
        jobName,
        runs24h: Number(runs?.runs_24h ?? 0),
        successRate24h: rate(runs?.succeeded_24h ?? 0n, runs?.finished_24h ?? 0n),
        runs7d: Number(runs?.runs_7d ?? 0),
        successRate7d: rate(runs?.succeeded_7d ?? 0n, runs?.finished_7d ?? 0n),
        lastFailureAt: failure ? failure.at.toISOString() : null,
        lastFailureError: failure?.error ?? null,
        nextRunAt: deps.jobs.nextRunAt(jobName, now)?.toISOString() ?? null,
      };
    }),
    generatedAt: now.toISOString(),
  };
}

/** `GET /admin/violations`: one query. */
export async function listViolations(
  deps: AdminDeps,
  query: z.output<typeof ListViolationsQuery>,
): Promise<z.infer<typeof AdminViolationListSchema>> {
  const now = deps.clock.now();
  let cursor: store.ViolationCursor | null = null;
  if (query.cursor !== undefined) {
    if (query.sort === "detectedAt") {
      const [detectedAt, id] = decodeCursor(query.cursor, "v:d", ["time", "uuid"] as const);
      cursor = { sort: "detectedAt", detectedAt, id };
    } else {
      const [graceEndsAt, id] = decodeCursor(query.cursor, "v:g", ["timeOrNull", "uuid"] as const);
      cursor = { sort: "graceEndsAt", graceEndsAt, id };
    }
  }
  const rows = await store.listViolations(deps.db, {
    now,
    status: query.status ?? "unresolved",
    type: query.type,
    action: query.action,
    organization: organizationMatch(query.q),
    sort: query.sort,
    cursor,
    limit: query.limit,
  });
  return toPage(
    rows,
    query.limit,
    (row) => serializeViolation(row, now),
    (last) =>
      query.sort === "detectedAt"
        ? encodeCursor("v:d", [last.detected_at, last.id])
        : encodeCursor("v:g", [last.grace_ends_at, last.id]),
  );
}

function serializeOrganization(row: store.OrganizationRow): AdminOrganizationSummary {
  return {
    id: row.id,
    name: row.name,
    planSlug: row.plan_slug,
    status: row.status,
    createdAt: row.created_at.toISOString(),
  };
}

/** `GET /admin/organizations`: one query. */
export async function searchOrganizations(
  deps: AdminDeps,
  query: z.output<typeof SearchOrganizationsQuery>,
): Promise<z.infer<typeof AdminOrganizationListSchema>> {
  const organization = organizationMatch(query.q);
  const byName = organization !== undefined && "prefix" in organization;
  let cursor: store.OrganizationCursor | null = null;
  if (query.cursor !== undefined) {
    if (byName) {
      const [name, id] = decodeCursor(query.cursor, "o:n", ["text", "uuid"] as const);
      cursor = { name, id };
    } else {
      const [createdAt, id] = decodeCursor(query.cursor, "o:c", ["time", "uuid"] as const);
      cursor = { createdAt, id };
    }
  }
  const rows = await store.searchOrganizations(deps.db, {
    organization,
    cursor,
    limit: query.limit,
  });
  return toPage(rows, query.limit, serializeOrganization, (last) =>
    byName
      ? encodeCursor("o:n", [last.sort_name, last.id])
      : encodeCursor("o:c", [last.created_at, last.id]),
  );
}

const DETAIL_VIOLATIONS = 50;
const DETAIL_NOTICES = 50;
const DETAIL_MEMBERS = 200;
const DETAIL_BOTS = 10;
const DETAIL_DISPUTES = 50;

/**
 * `GET /admin/organizations/:id`: thirteen queries whatever the organization's size (the billing
 * details are four of them, the disputes one).
 */
export async function getOrganizationDetail(
  deps: AdminDeps,
  input: { organizationId: string },
): Promise<AdminOrganizationDetail> {
  const { db } = deps;
  const { organizationId } = input;
  const now = deps.clock.now();
  const organization = await store.findOrganization(db, { organizationId });
  if (!organization) {
    throw new NotFoundError("Organization not found", { code: "ORGANIZATION_NOT_FOUND" });
  }
  const [subscription, usage, violations, notices, members, bots, billing, disputes] =
    await Promise.all([
      store.findNewestSubscription(db, { organizationId }),
      getUsage(db, organizationId, now),
      store.findOrganizationViolations(db, { organizationId, limit: DETAIL_VIOLATIONS }),
      store.findOrganizationNotices(db, { organizationId, limit: DETAIL_NOTICES }),
      store.findMembers(db, { organizationId, limit: DETAIL_MEMBERS }),
      store.findRecentBots(db, { organizationId, limit: DETAIL_BOTS }),
      getBillingDetails(db, { organizationId }),
      listOrganizationDisputes(db, { organizationId, limit: DETAIL_DISPUTES }),
    ]);
  const events = await store.findViolationEvents(db, {
    violationIds: violations.map((violation) => violation.id),
  });

  const paymentTimeline: AdminOrganizationDetail["paymentTimeline"] = [];
  if (subscription) {
    const add = (
      at: Date | null,
      kind: (typeof paymentTimeline)[number]["kind"],
      detail: string,
    ) => {
      if (at) paymentTimeline.push({ at: at.toISOString(), kind, detail });
    };
    add(subscription.created_at, "subscription_created", `${subscription.plan_slug} plan`);
    for (const failedAt of subscription.outstanding_failures_at) {
      add(failedAt, "payment_failed", "invoice payment failed");
    }
    add(subscription.last_payment_succeeded_event_at, "payment_succeeded", "invoice paid");
    add(
      subscription.grace_ends_at,
      "grace_ends",
      `grace period ends (status ${subscription.status})`,
    );
    add(subscription.canceled_at, "canceled", "subscription canceled");
    add(subscription.comp_until, "comp_until", "access restored without payment until then");
  }
  for (const confirmation of billing.pendingConfirmations) {
    paymentTimeline.push({
      at: confirmation.since,
      kind: "confirmation_requested",
      detail: `invoice ${confirmation.invoiceId} waits for the customer's authentication`,
    });
  }
  for (const dispute of disputes) {
    paymentTimeline.push({
      at: dispute.openedAt,
      kind: "dispute_opened",
      detail: `dispute ${dispute.id} (${dispute.reason.replace(/_/g, " ")})`,
    });
    if (dispute.closedAt) {
      paymentTimeline.push({
        at: dispute.closedAt,
        kind: "dispute_closed",
        detail: `dispute ${dispute.id} ${dispute.status.replace(/_/g, " ")}`,
      });
    }
  }
  paymentTimeline.sort((a, b) => a.at.localeCompare(b.at));

  const limits = [
    {
      limit: "meetingsPerMonth",
      used: usage.meetingsThisMonth,
      max: organization.max_meetings_per_month,
    },
    { limit: "teamMembers", used: usage.activeMembers, max: organization.max_team_members },
    {
      limit: "storageBytes",
      used: Number(usage.storageBytes),
      max: organization.max_storage_bytes === null ? null : Number(organization.max_storage_bytes),
    },
  ] as const;

  return {
    organization: serializeOrganization(organization),
    subscription: subscription ? serializeSubscription(subscription) : null,
    paymentTimeline,
    usage: limits.map((entry) => ({ ...entry })),
    violations: violations.map((violation) => ({
      ...serializeViolation(violation, now),
      history: events
        .filter((event) => event.violation_id === violation.id)
        .map((event) => ({
          at: event.at.toISOString(),
          event:
            event.event as AdminOrganizationDetail["violations"][number]["history"][number]["event"],
          actorUserId: event.actor_user_id,
          reason: event.reason,
        })),
    })),
    notices: notices.map(serializeNotice),
    members: members.map((member) => ({
      ...serializeUser(member.user_id, member),
      role: member.role,
    })),
    billing,
    disputes,
    recentBots: bots.map((bot) => ({
      id: bot.id,
      meetingId: bot.meeting_id,
      status: bot.status,
      createdAt: bot.created_at.toISOString(),
    })),
  };
}

/** `GET /admin/job-runs`: one query. */
export async function listJobRuns(
  deps: AdminDeps,
  query: z.output<typeof ListJobRunsQuery>,
): Promise<z.infer<typeof AdminJobRunListSchema>> {
  const cursor =
    query.cursor === undefined
      ? null
      : (([startedAt, id]) => ({ startedAt, id }))(
          decodeCursor(query.cursor, "j", ["time", "uuid"] as const),
        );
  const rows = await overviewStore.listJobRuns(deps.db, {
    jobName: query.jobName,
    outcome: query.outcome,
    cursor,
    limit: query.limit,
  });
  return toPage(rows, query.limit, serializeJobRun, (last) =>
    encodeCursor("j", [last.started_at, last.id]),
  );
}

/** `GET /admin/audit-log`: one query. */
export async function listAuditLog(
  deps: AdminDeps,
  query: z.output<typeof ListAuditLogQuery>,
): Promise<z.infer<typeof AdminAuditLogSchema>> {
  const cursor =
    query.cursor === undefined
      ? null
      : (([createdAt, id]) => ({ createdAt, id }))(
          decodeCursor(query.cursor, "a", ["time", "uuid"] as const),
        );
  const rows = await auditStore.listAuditEntries(deps.db, {
    targetType: query.targetType,
    targetId: query.targetId,
    actorUserId: query.actorUserId,
    cursor,
    limit: query.limit,
  });
  return toPage(rows, query.limit, serializeAuditEntry, (last) =>
    encodeCursor("a", [last.created_at, last.id]),
  );
}
