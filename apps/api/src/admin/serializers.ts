import type * as auditStore from "./auditStore";
import type * as overviewStore from "./overviewStore";
import type * as store from "./store";
import type {
  AdminAuditEntry,
  AdminJobRun,
  AdminNotice,
  AdminSubscription,
  AdminUser,
  AdminViolation,
  AuditAction,
  AuditTargetType,
} from "./schemas";

/** The console's JSON of the admin feature's rows (camelCase, ISO times, numbers). */

const iso = (date: Date | null): string | null => (date ? date.toISOString() : null);

export function serializeViolation(row: store.ViolationListRow, now: Date): AdminViolation {
  const isWaived = row.resolved_at === null && row.waived_until !== null && row.waived_until > now;
  return {
    id: row.id,
    organizationId: row.organization_id,
    organizationName: row.organization_name,
    type: row.type as AdminViolation["type"],
    action: row.action as AdminViolation["action"],
    status: row.resolved_at !== null ? "resolved" : isWaived ? "waived" : "open",
    limit: Number(row.limit_value),
    currentUsage: Number(row.current_usage),
    detectedAt: row.detected_at.toISOString(),
    graceEndsAt: iso(row.grace_ends_at),
    waivedUntil: iso(row.waived_until),
    resolvedAt: iso(row.resolved_at),
    version: row.version,
  };
}

export function serializeSubscription(row: store.SubscriptionRow): AdminSubscription {
  return {
    id: row.id,
    planSlug: row.plan_slug,
    status: row.status as AdminSubscription["status"],
    stripeSubscriptionId: row.stripe_subscription_id,
    currentPeriodEnd: iso(row.current_period_end),
    graceEndsAt: iso(row.grace_ends_at),
    paymentFailedAt: iso(row.payment_failed_at),
    paymentRetryCount: row.payment_retry_count,
    compUntil: iso(row.comp_until),
    version: row.version,
  };
}

export function serializeNotice(row: store.NoticeRow): AdminNotice {
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error,
    createdAt: row.created_at.toISOString(),
    sentAt: iso(row.sent_at),
    recipientEmail: row.recipient_email,
  };
}

export function serializeJobRun(row: overviewStore.JobRunRow): AdminJobRun {
  return {
    id: row.id,
    jobName: row.job_name,
    scheduledFor: row.scheduled_for.toISOString(),
    startedAt: row.started_at.toISOString(),
    finishedAt: iso(row.finished_at),
    outcome: row.outcome,
    rowsAffected: row.rows_affected,
    error: row.error,
    instanceId: row.instance_id,
  };
}

const asObject = (value: unknown): Record<string, unknown> | null =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;

/** A user's columns (`store.UserColumns`) as the console's `AdminUser`. */
export function serializeUser(userId: string, row: store.UserColumns): AdminUser {
  return {
    userId,
    clerkId: row.user_clerk_id,
    email: row.user_email,
    name: row.user_name,
    username: row.user_username,
  };
}

export function serializeAuditEntry(row: auditStore.AuditRow): AdminAuditEntry {
  return {
    id: row.id,
    actorUserId: row.actor_user_id,
    actorEmail: row.user_email,
    actor: serializeUser(row.actor_user_id, row),
    action: row.action as AuditAction,
    targetType: row.target_type as AuditTargetType,
    targetId: row.target_id,
    organizationId: row.organization_id,
    organizationName: row.organization_name,
    reason: row.reason,
    before: asObject(row.before),
    after: asObject(row.after),
    createdAt: row.created_at.toISOString(),
  };
}
