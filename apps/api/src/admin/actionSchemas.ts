import { z } from "../http/openapi";
import {
  AdminNoticeSchema,
  AdminSubscriptionSchema,
  AdminViolationSchema,
  ViolationTypeSchema,
} from "./schemas";

/**
 * Request and response shapes of the admin actions (`POST /api/v1/admin/...`); the reads' shapes
 * are in `schemas.ts`. Like those, they feed the console's generated client.
 */

/**
 * A date-time in a request, as an ISO string with its offset; parsed to a Date. Described before
 * the transform, as meetings' isoDateTime is: an `.openapi({ type })` after it would hide a
 * `.nullable()` added later.
 */
const requestDateTime = z.iso
  .datetime({ offset: true })
  .openapi({ example: "2026-12-31T00:00:00Z" })
  .transform((value) => new Date(value));

// Actions: every body carries the operator's reason; edits of versioned targets carry the version
// the operator saw (optimistic concurrency).

const reason = z.string().trim().min(1, "reason must not be empty").max(1000).openapi({
  description: "Why: kept in the audit log",
  example: "Customer is migrating recordings; agreed on the phone",
});
const expectedVersion = z.number().int().nonnegative().openapi({
  description: "The version read with the target; a stale one answers 409 VERSION_CONFLICT",
});

export const ExtendGraceBody = z
  .object({ reason, expectedVersion, graceEndsAt: requestDateTime })
  .strict()
  .openapi("AdminExtendGraceBody");

export const WaiveViolationBody = z
  .object({ reason, expectedVersion, until: requestDateTime })
  .strict()
  .openapi("AdminWaiveViolationBody");

export const RecheckViolationsBody = z
  .object({ reason })
  .strict()
  .openapi("AdminRecheckViolationsBody");

export const ResendNoticeBody = z.object({ reason }).strict().openapi("AdminResendNoticeBody");

export const LiftSuspensionBody = z
  .object({
    reason,
    expectedVersion: expectedVersion.openapi({ description: "The subscription's version" }),
    days: z.number().int().min(1).max(90),
  })
  .strict()
  .openapi("AdminLiftSuspensionBody");

export const RunJobBody = z.object({ reason }).strict().openapi("AdminRunJobBody");

const auditId = z.uuid().openapi({ description: "The audit log entry this action wrote" });

export const ViolationActionResultSchema = z
  .object({ violation: AdminViolationSchema, auditId })
  .openapi("AdminViolationActionResult");

export const RecheckResultSchema = z
  .object({
    organizationId: z.uuid(),
    violations: z
      .array(AdminViolationSchema)
      .openapi({ description: "Unresolved, after the check" }),
    added: z.array(ViolationTypeSchema),
    resolved: z.array(ViolationTypeSchema),
    auditId,
  })
  .openapi("AdminRecheckResult");

export const NoticeActionResultSchema = z
  .object({ notice: AdminNoticeSchema, auditId })
  .openapi("AdminNoticeActionResult");

export const SubscriptionActionResultSchema = z
  .object({ subscription: AdminSubscriptionSchema, auditId })
  .openapi("AdminSubscriptionActionResult");

export const JobRunResultSchema = z
  .object({
    outcome: z.object({
      status: z.enum(["succeeded", "failed"]),
      runId: z.uuid(),
      rowsAffected: z.number().int().nonnegative().nullable(),
      error: z.string().nullable(),
    }),
    auditId,
  })
  .openapi("AdminJobRunResult");
