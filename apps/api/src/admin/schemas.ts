import {
  BillingCustomerSchema,
  DisputeSchema,
  PendingConfirmationSchema,
  SubscriptionStatusSchema,
} from "../billing";
import { z } from "../http/openapi";

/**
 * Request and response shapes of `/api/v1/admin`'s reads (platform admins only; the actions'
 * shapes are in `actionSchemas.ts`). The console's typed client (`packages/api-client`) is
 * generated from the document these feed: renaming a field here is a change to that client.
 */

const dateTime = z.string().openapi({ format: "date-time" });
const nullableDateTime = z.string().nullable().openapi({ format: "date-time" });

const IdParams = z.object({ id: z.uuid().openapi({ param: { name: "id", in: "path" } }) });

export const ViolationIdParams = IdParams;
export const OrganizationIdParams = IdParams;
export const NoticeIdParams = IdParams;
export const JobNameParams = z.object({
  jobName: z
    .string()
    .min(1)
    .max(100)
    .openapi({ param: { name: "jobName", in: "path" }, example: "recheckPlanViolations" }),
});

export const ViolationTypeSchema = z
  .enum(["meetings", "team_members", "storage"])
  .openapi("AdminViolationType");
export const ViolationActionSchema = z
  .enum(["read_only", "notify_admin", "grace_period"])
  .openapi("AdminViolationAction");
/** `waived`: a waiver is in force (not enforced, still shown); `open`: enforced as its action says. */
export const ViolationStatusSchema = z
  .enum(["open", "waived", "resolved"])
  .openapi("AdminViolationStatus");

const limitParam = z.coerce.number().int().min(1).max(200).default(50);
const cursorParam = z.string().min(1).max(512).optional();

export const ListViolationsQuery = z.object({
  type: ViolationTypeSchema.optional(),
  action: ViolationActionSchema.optional(),
  status: ViolationStatusSchema.optional().openapi({
    description: "Default: open and waived (every unresolved violation)",
  }),
  sort: z.enum(["graceEndsAt", "detectedAt"]).default("detectedAt").openapi({
    description:
      "graceEndsAt: soonest first (no grace end last); detectedAt: newest first. Ties by id.",
  }),
  q: z.string().trim().min(1).max(200).optional().openapi({
    description: "An organization id (exact) or the start of its name (case-insensitive)",
  }),
  cursor: cursorParam,
  limit: limitParam,
});

export const AdminViolationSchema = z
  .object({
    id: z.uuid(),
    organizationId: z.uuid(),
    organizationName: z.string(),
    type: ViolationTypeSchema,
    action: ViolationActionSchema,
    status: ViolationStatusSchema,
    limit: z.number().int().nonnegative(),
    currentUsage: z.number().int().nonnegative(),
    detectedAt: dateTime,
    graceEndsAt: nullableDateTime,
    waivedUntil: nullableDateTime,
    resolvedAt: nullableDateTime,
    version: z.number().int().nonnegative().openapi({
      description: "Send it back as expectedVersion; a stale one answers 409 VERSION_CONFLICT",
    }),
  })
  .openapi("AdminViolation");

export const AdminViolationListSchema = z
  .object({ data: z.array(AdminViolationSchema), nextCursor: z.string().nullable() })
  .openapi("AdminViolationList");

export const ViolationHistoryEntrySchema = z
  .object({
    at: dateTime,
    event: z.enum([
      "detected",
      "action_changed",
      "usage_changed",
      "resolved",
      "grace_extended",
      "waived",
    ]),
    actorUserId: z.uuid().nullable(),
    reason: z.string().nullable(),
  })
  .openapi("AdminViolationHistoryEntry");

export const AdminViolationWithHistorySchema = AdminViolationSchema.extend({
  history: z.array(ViolationHistoryEntrySchema),
}).openapi("AdminViolationWithHistory");

export const AdminOverviewSchema = z
  .object({
    organizations: z.object({
      total: z.number().int().nonnegative(),
      byPlan: z.array(
        z.object({
          planSlug: z.string(),
          count: z.number().int().nonnegative(),
          byStatus: z
            .object({
              active: z.number().int().nonnegative(),
              deleted: z.number().int().nonnegative(),
            })
            .openapi({ description: "The plan's organizations by status (they add up to count)" }),
        }),
      ),
      byStatus: z.array(
        z.object({
          status: z.enum(["active", "deleted"]),
          count: z.number().int().nonnegative(),
        }),
      ),
    }),
    violations: z.object({
      open: z.array(
        z.object({
          type: ViolationTypeSchema,
          action: ViolationActionSchema,
          count: z.number().int().nonnegative(),
        }),
      ),
      waived: z.number().int().nonnegative(),
      overTime: z
        .array(
          z.object({
            day: z.string().openapi({ format: "date", example: "2026-11-29" }),
            detected: z.number().int().nonnegative(),
            resolved: z.number().int().nonnegative(),
          }),
        )
        .openapi({ description: "The last 30 days (UTC), oldest first, every day present" }),
    }),
    subscriptions: z.object({
      pastDue: z.number().int().nonnegative(),
      suspended: z.number().int().nonnegative(),
      comped: z.number().int().nonnegative().openapi({
        description: "Suspended subscriptions whose access is restored by a comp right now",
      }),
      graceEndingIn24h: z.number().int().nonnegative(),
      graceEndingIn7d: z.number().int().nonnegative(),
    }),
    notices: z.object({
      pending: z.number().int().nonnegative(),
      sent: z.number().int().nonnegative().openapi({
        description: "Sent in the last 30 days (the days of violations.overTime)",
      }),
      failed: z.number().int().nonnegative(),
    }),
    disputes: z.object({
      open: z.number().int().nonnegative(),
      needsResponse: z.number().int().nonnegative().openapi({
        description: "Open and waiting for our evidence (chargebacks and inquiries)",
      }),
      evidenceDueFirst: z
        .array(DisputeSchema.extend({ organizationId: z.uuid(), organizationName: z.string() }))
        .openapi({ description: "Up to 10 open disputes, the earliest evidence deadline first" }),
    }),
    jobs: z.array(
      z.object({
        jobName: z.string(),
        runs24h: z.number().int().nonnegative(),
        successRate24h: z.number().min(0).max(1).nullable().openapi({
          description: "Succeeded / finished (succeeded + failed); null without finished runs",
        }),
        runs7d: z.number().int().nonnegative(),
        successRate7d: z.number().min(0).max(1).nullable(),
        lastFailureAt: nullableDateTime,
        lastFailureError: z.string().nullable(),
        nextRunAt: nullableDateTime.openapi({
          description: "When its schedule fires next; null for a name no schedule has any more",
        }),
      }),
    ),
    generatedAt: dateTime,
  })
  .openapi("AdminOverview");

export const SearchOrganizationsQuery = z.object({
  q: z.string().trim().min(1).max(200).optional().openapi({
    description: "An organization id (exact) or the start of its name (case-insensitive)",
  }),
  cursor: cursorParam,
  limit: limitParam,
});

export const AdminOrganizationSummarySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    planSlug: z.string(),
    status: z.enum(["active", "deleted"]),
    createdAt: dateTime,
  })
  .openapi("AdminOrganizationSummary");

export const AdminOrganizationListSchema = z
  .object({ data: z.array(AdminOrganizationSummarySchema), nextCursor: z.string().nullable() })
  .openapi("AdminOrganizationList");

export const AdminSubscriptionSchema = z
  .object({
    id: z.uuid(),
    planSlug: z.string(),
    status: SubscriptionStatusSchema,
    stripeSubscriptionId: z.string(),
    currentPeriodEnd: nullableDateTime,
    graceEndsAt: nullableDateTime,
    paymentFailedAt: nullableDateTime,
    paymentRetryCount: z.number().int().nonnegative(),
    compUntil: nullableDateTime.openapi({
      description: "While in the future, a suspended subscription may write (lifted by an admin)",
    }),
    version: z.number().int().nonnegative(),
  })
  .openapi("AdminSubscription");

export const AdminNoticeSchema = z
  .object({
    id: z.uuid(),
    type: z.string(),
    status: z.enum(["pending", "sent", "failed"]),
    attempts: z.number().int().nonnegative(),
    lastError: z.string().nullable(),
    createdAt: dateTime,
    sentAt: nullableDateTime,
    recipientEmail: z.string().nullable(),
  })
  .openapi("AdminNotice");

/** A user as Clerk described them (its webhooks, or the first session token's claims). */
export const AdminUserSchema = z
  .object({
    userId: z.uuid(),
    clerkId: z.string().nullable(),
    email: z.string().nullable().openapi({ description: "The primary e-mail address" }),
    name: z.string().nullable().openapi({ description: "First and last name, as given" }),
    username: z.string().nullable(),
  })
  .openapi("AdminUser");

export const AdminOrganizationDetailSchema = z
  .object({
    organization: AdminOrganizationSummarySchema,
    subscription: AdminSubscriptionSchema.nullable(),
    paymentTimeline: z.array(
      z.object({
        at: dateTime,
        kind: z.enum([
          "subscription_created",
          "payment_succeeded",
          "payment_failed",
          "grace_ends",
          "canceled",
          "comp_until",
          "confirmation_requested",
          "dispute_opened",
          "dispute_closed",
        ]),
        detail: z.string(),
      }),
    ),
    billing: BillingCustomerSchema.extend({
      pendingConfirmations: z.array(PendingConfirmationSchema),
    }).openapi("AdminBillingDetails"),
    disputes: z.array(DisputeSchema).openapi({ description: "Up to 50, newest first" }),
    usage: z.array(
      z.object({
        limit: z.enum(["meetingsPerMonth", "teamMembers", "storageBytes"]),
        used: z.number().int().nonnegative(),
        max: z.number().int().nonnegative().nullable().openapi({ description: "null: unlimited" }),
      }),
    ),
    violations: z.array(AdminViolationWithHistorySchema),
    notices: z.array(AdminNoticeSchema),
    members: z.array(AdminUserSchema.extend({ role: z.enum(["admin", "member"]) })),
    recentBots: z.array(
      z.object({ id: z.uuid(), meetingId: z.uuid(), status: z.string(), createdAt: dateTime }),
    ),
  })
  .openapi("AdminOrganizationDetail");

export const JobOutcomeSchema = z.enum(["running", "succeeded", "failed", "skipped"]);

export const ListJobRunsQuery = z.object({
  jobName: z.string().min(1).max(100).optional(),
  outcome: JobOutcomeSchema.optional(),
  cursor: cursorParam,
  limit: limitParam,
});

export const AdminJobRunSchema = z
  .object({
    id: z.uuid(),
    jobName: z.string(),
    scheduledFor: dateTime,
    startedAt: dateTime,
    finishedAt: nullableDateTime,
    outcome: JobOutcomeSchema,
    rowsAffected: z.number().int().nonnegative(),
    error: z
      .string()
      .nullable()
      .openapi({ description: "A failed run's error message (e-mail addresses as `[email]`)" }),
    instanceId: z
      .string()
      .nullable()
      .openapi({
        description:
          "Who ran it: `<host>:<pid>:<id>` (a scheduler), `admin:<pid>` (Run now), " +
          "`cli:<pid>` (`pnpm job`)",
        example: "api-1:4242:9f86d081",
      }),
  })
  .openapi("AdminJobRun");

export const AdminJobRunListSchema = z
  .object({ data: z.array(AdminJobRunSchema), nextCursor: z.string().nullable() })
  .openapi("AdminJobRunList");

export const AdminJobListSchema = z
  .object({
    data: z.array(
      z.object({
        name: z.string(),
        schedule: z
          .string()
          .openapi({ description: "Cron, in `timezone`", example: "*/5 * * * *" }),
        timezone: z.string().openapi({ description: "CRON_TIMEZONE", example: "UTC" }),
        description: z.string(),
        nextRunAt: nullableDateTime.openapi({
          description: "When the schedule fires next after `generatedAt`",
        }),
      }),
    ),
    generatedAt: dateTime.openapi({
      description:
        "The instant the next runs are reckoned from: how far off a next run is, as of this answer",
    }),
  })
  .openapi("AdminJobList");

export const AuditTargetTypeSchema = z
  .enum(["violation", "organization", "notice", "subscription", "job"])
  .openapi("AdminAuditTargetType");

export const AuditActionSchema = z
  .enum([
    "violation.extend_grace",
    "violation.waive",
    "organization.recheck_violations",
    "notice.resend",
    "subscription.lift_suspension",
    "job.run_requested",
    "job.run",
  ])
  .openapi("AdminAuditAction");

export const ListAuditLogQuery = z.object({
  targetType: AuditTargetTypeSchema.optional(),
  targetId: z.string().min(1).max(200).optional(),
  actorUserId: z.uuid().optional(),
  cursor: cursorParam,
  limit: limitParam,
});

const jsonObject = z.record(z.string(), z.unknown()).nullable();

export const AdminAuditEntrySchema = z
  .object({
    id: z.uuid(),
    actorUserId: z.uuid(),
    actorEmail: z.string().nullable(),
    actor: AdminUserSchema.openapi({ description: "Who acted (the admin's user)" }),
    action: AuditActionSchema,
    targetType: AuditTargetTypeSchema,
    targetId: z.string().openapi({ description: "The target's id; a job's name for a job" }),
    organizationId: z.uuid().nullable(),
    organizationName: z.string().nullable(),
    reason: z.string(),
    before: jsonObject,
    after: jsonObject,
    createdAt: dateTime,
  })
  .openapi("AdminAuditEntry");

export const AdminAuditLogSchema = z
  .object({ data: z.array(AdminAuditEntrySchema), nextCursor: z.string().nullable() })
  .openapi("AdminAuditLog");

export type AdminViolation = z.infer<typeof AdminViolationSchema>;
export type AdminOverview = z.infer<typeof AdminOverviewSchema>;
export type AdminOrganizationDetail = z.infer<typeof AdminOrganizationDetailSchema>;
export type AdminSubscription = z.infer<typeof AdminSubscriptionSchema>;
export type AdminNotice = z.infer<typeof AdminNoticeSchema>;
export type AdminJobRun = z.infer<typeof AdminJobRunSchema>;
export type AdminAuditEntry = z.infer<typeof AdminAuditEntrySchema>;
export type AdminUser = z.infer<typeof AdminUserSchema>;
export type AdminOrganizationSummary = z.infer<typeof AdminOrganizationSummarySchema>;
export type AuditAction = z.infer<typeof AuditActionSchema>;
export type AuditTargetType = z.infer<typeof AuditTargetTypeSchema>;
