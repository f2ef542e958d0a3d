/**
 * Compile-time checks of the error catalogue (`pnpm typecheck` runs them; nothing here runs):
 * a class only takes the codes the catalogue answers with its status, so the status follows
 * from the code.
 */
import {
  AppError,
  ConflictError,
  ForbiddenError,
  httpError,
  NotFoundError,
  TooManyRequestsError,
} from "@zigznote/shared";

export const allowed = [
  new ForbiddenError("Storage is over the plan's limit", { code: "PLAN_LIMIT_STORAGE" }),
  new NotFoundError("No such meeting", { code: "NOT_FOUND" }),
  new ConflictError("A bot is already in the call", { code: "BOT_ALREADY_ACTIVE" }),
  new TooManyRequestsError("Slow down", { code: "RATE_LIMITED", retryAfterSeconds: 3 }),
  new AppError(405, "Use GET", { code: "METHOD_NOT_ALLOWED" }),
  httpError("WEBHOOK_HANDLER_FAILED", "Redeliver it"),
];

export const refused = [
  // @ts-expect-error PLAN_LIMIT_STORAGE is a 403: a NotFoundError cannot carry it.
  new NotFoundError("No such meeting", { code: "PLAN_LIMIT_STORAGE" }),
  // @ts-expect-error BOT_ALREADY_ACTIVE is a 409, not a 403.
  new ForbiddenError("Refused", { code: "BOT_ALREADY_ACTIVE" }),
  // @ts-expect-error NOT_FOUND is a 404, not a 405.
  new AppError(405, "Use GET", { code: "NOT_FOUND" }),
  // @ts-expect-error not a code of the catalogue.
  httpError("NO_SUCH_CODE", "Nothing"),
  // @ts-expect-error ORGANIZATION_DELETED has two statuses: name its class instead.
  httpError("ORGANIZATION_DELETED", "Gone"),
];
