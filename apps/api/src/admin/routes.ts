import type { z } from "../http/openapi";
import {
  defineRoute,
  type AnswerBody,
  type RouteDefinition,
  type RouteInput,
  type RouteResponses,
  type RouteSpec,
} from "../http/route";
import type { TransactionBracket } from "../lib/transactionHooks";
import * as actions from "./actions";
import type { AdminDeps } from "./deps";
import * as reads from "./reads";
import {
  ExtendGraceBody,
  JobRunResultSchema,
  LiftSuspensionBody,
  NoticeActionResultSchema,
  RecheckResultSchema,
  RecheckViolationsBody,
  ResendNoticeBody,
  RunJobBody,
  SubscriptionActionResultSchema,
  ViolationActionResultSchema,
  WaiveViolationBody,
} from "./actionSchemas";
import {
  AdminAuditLogSchema,
  AdminJobListSchema,
  AdminJobRunListSchema,
  AdminOrganizationDetailSchema,
  AdminOrganizationListSchema,
  AdminOverviewSchema,
  AdminViolationListSchema,
  JobNameParams,
  ListAuditLogQuery,
  ListJobRunsQuery,
  ListViolationsQuery,
  NoticeIdParams,
  OrganizationIdParams,
  SearchOrganizationsQuery,
  ViolationIdParams,
} from "./schemas";

const tag = "Admin";
const role = "platformAdmin" as const;
/** The console acts across organizations: a platform admin's session needs no active one. */
const auth = "withoutOrganization" as const;

/** An action's answer: its result with 200 (what an Idempotency-Key stores in its transaction). */
function ok<T>(result: T): { status: 200; body: T } {
  return { status: 200, body: result };
}

/**
 * An audited action's route (POST, platform admins only): the handler hands the acting admin
 * and the request's parts to `run`, with the Idempotency-Key's bracket, so that the answer is
 * stored in the action's transaction.
 */
function actionRoute<
  P extends z.ZodType,
  B extends z.ZodType,
  R extends { 200: RouteResponses[number] },
>(
  spec: Omit<
    RouteSpec<P, undefined, B, typeof auth, R>,
    "method" | "tag" | "role" | "auth" | "handler"
  > & {
    run: (
      request: Pick<RouteInput<P, undefined, B, typeof auth>, "params" | "body"> & {
        actorUserId: string;
      },
      bracket: TransactionBracket<AnswerBody<R, 200>> | undefined,
    ) => Promise<AnswerBody<R, 200>>;
  },
): RouteDefinition {
  const { run, ...route } = spec;
  // `run` is checked against each route's 200 schema where the route is declared (R is inferred
  // there); for a generic R the compiler cannot reduce the answer type, hence the assertion.
  const handler = (async ({ params, body, auth: caller, idempotency }) => {
    const actorUserId = caller.userId ?? "";
    return ok(await run({ params, body, actorUserId }, idempotency.recordInTransaction(ok)));
  }) as (
    input: RouteInput<P, undefined, B, typeof auth>,
  ) => Promise<{ status: 200; body: AnswerBody<R, 200> }> as unknown as RouteSpec<
    P,
    undefined,
    B,
    typeof auth,
    R
  >["handler"];
  return defineRoute<P, undefined, B, typeof auth, R>({
    ...route,
    method: "post",
    tag,
    role,
    auth,
    handler,
  });
}

/**
 * `/api/v1/admin`: platform admins' sessions only (`role: "platformAdmin"`: 403
 * PLATFORM_ADMIN_REQUIRED for organization admins, members and API keys). Every action takes a
 * reason and writes one audit row in the transaction of its change (a job's run: one with its
 * claim, before it starts, and one with its outcome); edits of a versioned target take
 * `expectedVersion` and answer 409 VERSION_CONFLICT when it is stale.
 */
export function adminRoutes(deps: AdminDeps): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/api/v1/admin/overview",
      operationId: "getAdminOverview",
      tag,
      auth,
      role,
      summary: "Figures for the operators: organizations, violations, dunning, notices, jobs",
      responses: { 200: { description: "The overview", schema: AdminOverviewSchema } },
      async handler(_input) {
        return { status: 200, body: await reads.getOverview(deps) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/violations",
      operationId: "listAdminViolations",
      tag,
      auth,
      role,
      summary: "Plan violations across organizations: filters, sort, search, cursor pages",
      query: ListViolationsQuery,
      responses: { 200: { description: "A page of violations", schema: AdminViolationListSchema } },
      errors: ["INVALID_CURSOR"],
      async handler({ query }) {
        return { status: 200, body: await reads.listViolations(deps, query) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/organizations",
      operationId: "searchAdminOrganizations",
      tag,
      auth,
      role,
      summary: "Find organizations by id or name prefix (newest first without a query)",
      query: SearchOrganizationsQuery,
      responses: {
        200: { description: "A page of organizations", schema: AdminOrganizationListSchema },
      },
      errors: ["INVALID_CURSOR"],
      async handler({ query }) {
        return { status: 200, body: await reads.searchOrganizations(deps, query) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/organizations/:id",
      operationId: "getAdminOrganization",
      tag,
      auth,
      role,
      summary:
        "One organization: subscription and payment timeline, usage, violations with history, " +
        "notices, members, recent bots",
      params: OrganizationIdParams,
      responses: {
        200: { description: "The organization", schema: AdminOrganizationDetailSchema },
      },
      errors: ["ORGANIZATION_NOT_FOUND"],
      async handler({ params }) {
        return {
          status: 200,
          body: await reads.getOrganizationDetail(deps, { organizationId: params.id }),
        };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/jobs",
      operationId: "listAdminJobs",
      tag,
      auth,
      role,
      summary: "The scheduled jobs (what `jobs/:jobName/run` accepts) and when each runs next",
      responses: { 200: { description: "The jobs", schema: AdminJobListSchema } },
      handler() {
        const now = deps.clock.now();
        return {
          status: 200,
          body: {
            data: deps.jobs.list().map(({ name, schedule, description }) => ({
              name,
              schedule,
              timezone: deps.jobs.timezone,
              description,
              nextRunAt: deps.jobs.nextRunAt(name, now)?.toISOString() ?? null,
            })),
            generatedAt: now.toISOString(),
          },
        };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/job-runs",
      operationId: "listAdminJobRuns",
      tag,
      auth,
      role,
      summary: "Job runs, newest first, by job and outcome",
      query: ListJobRunsQuery,
      responses: { 200: { description: "A page of job runs", schema: AdminJobRunListSchema } },
      errors: ["INVALID_CURSOR"],
      async handler({ query }) {
        return { status: 200, body: await reads.listJobRuns(deps, query) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/admin/audit-log",
      operationId: "listAdminAuditLog",
      tag,
      auth,
      role,
      summary: "The admin audit log, newest first (append-only)",
      query: ListAuditLogQuery,
      responses: { 200: { description: "A page of audit entries", schema: AdminAuditLogSchema } },
      errors: ["INVALID_CURSOR"],
      async handler({ query }) {
        return { status: 200, body: await reads.listAuditLog(deps, query) };
      },
    }),

    actionRoute({
      path: "/api/v1/admin/violations/:id/extend-grace",
      operationId: "extendViolationGrace",
      summary: "Extend (or set) a violation's grace period: enforced again from graceEndsAt",
      params: ViolationIdParams,
      body: ExtendGraceBody,
      responses: {
        200: { description: "The violation after", schema: ViolationActionResultSchema },
      },
      errors: [
        "VIOLATION_NOT_FOUND",
        "VIOLATION_RESOLVED",
        "VERSION_CONFLICT",
        "DATE_IN_PAST",
        "GRACE_NOT_EXTENDED",
      ],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.extendGrace(deps, { actorUserId, violationId: params.id, ...body }, bracket),
    }),

    actionRoute({
      path: "/api/v1/admin/violations/:id/waive",
      operationId: "waiveViolation",
      summary: "Waive a violation until a date: not enforced until then, still shown",
      params: ViolationIdParams,
      body: WaiveViolationBody,
      responses: {
        200: { description: "The violation after", schema: ViolationActionResultSchema },
      },
      errors: ["VIOLATION_NOT_FOUND", "VIOLATION_RESOLVED", "VERSION_CONFLICT", "DATE_IN_PAST"],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.waiveViolation(deps, { actorUserId, violationId: params.id, ...body }, bracket),
    }),

    actionRoute({
      path: "/api/v1/admin/organizations/:id/recheck-violations",
      operationId: "recheckOrganizationViolations",
      summary: "Re-check an organization's usage against its plan now",
      params: OrganizationIdParams,
      body: RecheckViolationsBody,
      responses: { 200: { description: "The violations after", schema: RecheckResultSchema } },
      errors: ["ORGANIZATION_NOT_FOUND"],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.recheckViolations(
          deps,
          { actorUserId, organizationId: params.id, reason: body.reason },
          bracket,
        ),
    }),

    actionRoute({
      path: "/api/v1/admin/notices/:id/resend",
      operationId: "resendNotice",
      summary: "Send a notice again (back to pending, delivered after the commit)",
      description: "409 NOTICE_PENDING when it is still waiting to be sent.",
      params: NoticeIdParams,
      body: ResendNoticeBody,
      responses: { 200: { description: "The notice after", schema: NoticeActionResultSchema } },
      errors: ["NOTICE_NOT_FOUND", "NOTICE_PENDING"],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.resendNotice(
          deps,
          { actorUserId, noticeId: params.id, reason: body.reason },
          bracket,
        ),
    }),

    actionRoute({
      path: "/api/v1/admin/organizations/:id/lift-suspension",
      operationId: "liftSuspension",
      summary: "Lift a suspension for N days without payment (comp); the usual rules apply after",
      description:
        "The subscription stays suspended (payment still restores it as usual); the write guard " +
        "lets the organization write until compUntil. 409 NOT_SUSPENDED when it is not suspended.",
      params: OrganizationIdParams,
      body: LiftSuspensionBody,
      responses: {
        200: { description: "The subscription after", schema: SubscriptionActionResultSchema },
      },
      errors: ["ORGANIZATION_NOT_FOUND", "NOT_SUSPENDED", "VERSION_CONFLICT"],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.liftSuspension(deps, { actorUserId, organizationId: params.id, ...body }, bracket),
    }),

    actionRoute({
      path: "/api/v1/admin/jobs/:jobName/run",
      operationId: "runJobNow",
      summary: "Run a job now (waits for it; one run at a time across instances)",
      description:
        "Audited in two entries: `job.run_requested` (who asked, the run's id) committed with the " +
        "run's claim before the job starts, and `job.run` (the outcome; its id is `auditId`) when " +
        "it ends. 409 JOB_ALREADY_RUNNING while a run of it is in progress (nothing written).",
      params: JobNameParams,
      body: RunJobBody,
      responses: { 200: { description: "The run's outcome", schema: JobRunResultSchema } },
      errors: ["JOB_NOT_FOUND", "JOB_ALREADY_RUNNING"],
      run: ({ params, body, actorUserId }, bracket) =>
        actions.runJobNow(
          deps,
          { actorUserId, jobName: params.jobName, reason: body.reason },
          bracket,
        ),
    }),
  ];
}
