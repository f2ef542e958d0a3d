import { AppError } from "@zigznote/shared";
import type { z } from "../http/openapi";
import type { AdminDeps } from "./deps";
import type {
  JobRunResultSchema,
  NoticeActionResultSchema,
  RecheckResultSchema,
  SubscriptionActionResultSchema,
  ViolationActionResultSchema,
} from "./schemas";

const notYet = () => new AppError(501, "Not implemented yet", { code: "NOT_IMPLEMENTED" });

interface Actor {
  actorUserId: string;
  reason: string;
}

export function extendGrace(
  _deps: AdminDeps,
  _input: Actor & { violationId: string; expectedVersion: number; graceEndsAt: Date },
): Promise<z.infer<typeof ViolationActionResultSchema>> {
  return Promise.reject(notYet());
}

export function waiveViolation(
  _deps: AdminDeps,
  _input: Actor & { violationId: string; expectedVersion: number; until: Date },
): Promise<z.infer<typeof ViolationActionResultSchema>> {
  return Promise.reject(notYet());
}

export function recheckViolations(
  _deps: AdminDeps,
  _input: Actor & { organizationId: string },
): Promise<z.infer<typeof RecheckResultSchema>> {
  return Promise.reject(notYet());
}

export function resendNotice(
  _deps: AdminDeps,
  _input: Actor & { noticeId: string },
): Promise<z.infer<typeof NoticeActionResultSchema>> {
  return Promise.reject(notYet());
}

export function liftSuspension(
  _deps: AdminDeps,
  _input: Actor & { organizationId: string; expectedVersion: number; days: number },
): Promise<z.infer<typeof SubscriptionActionResultSchema>> {
  return Promise.reject(notYet());
}

export function runJobNow(
  _deps: AdminDeps,
  _input: Actor & { jobName: string },
): Promise<z.infer<typeof JobRunResultSchema>> {
  return Promise.reject(notYet());
}
