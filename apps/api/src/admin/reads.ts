import { AppError } from "@zigznote/shared";
import type { z } from "../http/openapi";
import type { AdminDeps } from "./deps";
import type {
  AdminAuditLogSchema,
  AdminJobRunListSchema,
  AdminOrganizationDetail,
  AdminOrganizationListSchema,
  AdminOverview,
  AdminViolationListSchema,
  ListAuditLogQuery,
  ListJobRunsQuery,
  ListViolationsQuery,
  SearchOrganizationsQuery,
} from "./schemas";

const notYet = () => new AppError(501, "Not implemented yet", { code: "NOT_IMPLEMENTED" });

export function getOverview(_deps: AdminDeps): Promise<AdminOverview> {
  return Promise.reject(notYet());
}

export function listViolations(
  _deps: AdminDeps,
  _query: z.output<typeof ListViolationsQuery>,
): Promise<z.infer<typeof AdminViolationListSchema>> {
  return Promise.reject(notYet());
}

export function searchOrganizations(
  _deps: AdminDeps,
  _query: z.output<typeof SearchOrganizationsQuery>,
): Promise<z.infer<typeof AdminOrganizationListSchema>> {
  return Promise.reject(notYet());
}

export function getOrganizationDetail(
  _deps: AdminDeps,
  _input: { organizationId: string },
): Promise<AdminOrganizationDetail> {
  return Promise.reject(notYet());
}

export function listJobRuns(
  _deps: AdminDeps,
  _query: z.output<typeof ListJobRunsQuery>,
): Promise<z.infer<typeof AdminJobRunListSchema>> {
  return Promise.reject(notYet());
}

export function listAuditLog(
  _deps: AdminDeps,
  _query: z.output<typeof ListAuditLogQuery>,
): Promise<z.infer<typeof AdminAuditLogSchema>> {
  return Promise.reject(notYet());
}
