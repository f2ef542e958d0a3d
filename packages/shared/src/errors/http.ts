/**
 * The one error hierarchy of the API. Services throw these; the error handler turns each into
 * `{ error: { code, message, details? }, requestId }` with the class's status. Codes are stable:
 * clients branch on them, so a code never changes meaning once released.
 */

export type ErrorDetails = Record<string, unknown>;

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetails };
  requestId?: string;
}

/** Base class: an error with an HTTP status, a stable machine-readable code and optional details. */
export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ErrorDetails | undefined;

  constructor(status: number, code: string, message: string, details?: ErrorDetails) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** Headers the response must carry besides the body (e.g. Retry-After). */
  headers(): Record<string, string> {
    return {};
  }

  toBody(requestId?: string): ErrorBody {
    const error: ErrorBody["error"] = { code: this.code, message: this.message };
    if (this.details !== undefined) error.details = this.details;
    return requestId === undefined ? { error } : { error, requestId };
  }
}

/** 400: the request is malformed in a way that is not a field validation (bad JSON, bad header). */
export class BadRequestError extends AppError {
  constructor(message = "Bad request", details?: ErrorDetails, code = "BAD_REQUEST") {
    super(400, code, message, details);
  }
}

export interface FieldIssue {
  path: string;
  message: string;
  code?: string;
}

/** 400: one or more fields failed validation; `details.fields` lists each one. */
export class ValidationError extends AppError {
  readonly fields: FieldIssue[];

  constructor(fields: FieldIssue[], message = "Request validation failed") {
    super(400, "VALIDATION_ERROR", message, { fields });
    this.fields = fields;
  }
}

/** 401: missing, malformed, expired or otherwise unacceptable credentials. */
export class UnauthorizedError extends AppError {
  constructor(message = "Authentication required", code = "UNAUTHORIZED", details?: ErrorDetails) {
    super(401, code, message, details);
  }
}

/** 402: the organization's billing state forbids this action (e.g. suspended for non-payment). */
export class PaymentRequiredError extends AppError {
  constructor(message = "Payment required", code = "PAYMENT_REQUIRED", details?: ErrorDetails) {
    super(402, code, message, details);
  }
}

/** 403: authenticated, but not allowed (role, scope, plan limit). */
export class ForbiddenError extends AppError {
  constructor(message = "Forbidden", code = "FORBIDDEN", details?: ErrorDetails) {
    super(403, code, message, details);
  }
}

/** 404: no such resource, or not visible to the caller's organization (never reveals which). */
export class NotFoundError extends AppError {
  constructor(message = "Resource not found", code = "NOT_FOUND", details?: ErrorDetails) {
    super(404, code, message, details);
  }
}

/** 409: the request conflicts with the current state (duplicate, already active, ...). */
export class ConflictError extends AppError {
  constructor(
    message = "Conflict with the current state",
    details?: ErrorDetails,
    code = "CONFLICT",
  ) {
    super(409, code, message, details);
  }
}

/** 413: the request body is larger than this route accepts. */
export class PayloadTooLargeError extends AppError {
  constructor(message = "Request body too large", details?: ErrorDetails) {
    super(413, "PAYLOAD_TOO_LARGE", message, details);
  }
}

/** 429: too many requests or attempts; carries how long to wait, sent as `Retry-After`. */
export class TooManyRequestsError extends AppError {
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number, message = "Too many requests", details?: ErrorDetails) {
    const seconds = Math.max(1, Math.ceil(retryAfterSeconds));
    super(429, "TOO_MANY_REQUESTS", message, { ...details, retryAfterSeconds: seconds });
    this.retryAfterSeconds = seconds;
  }

  override headers(): Record<string, string> {
    return { "Retry-After": String(this.retryAfterSeconds) };
  }
}

/** 500: an unexpected failure. The message sent to clients is always generic. */
export class InternalServerError extends AppError {
  constructor(message = "Internal server error") {
    super(500, "INTERNAL_ERROR", message);
  }
}

/** 502: an upstream provider (Recall, Stripe, Clerk) failed or answered something unusable. */
export class BadGatewayError extends AppError {
  constructor(message = "Upstream provider failed", details?: ErrorDetails, code = "BAD_GATEWAY") {
    super(502, code, message, details);
  }
}

/** 503: a dependency this request needs (database, Redis) is unavailable right now. */
export class ServiceUnavailableError extends AppError {
  readonly retryAfterSeconds: number | undefined;

  constructor(message = "Service unavailable", details?: ErrorDetails, retryAfterSeconds?: number) {
    super(503, "SERVICE_UNAVAILABLE", message, details);
    this.retryAfterSeconds = retryAfterSeconds;
  }

  override headers(): Record<string, string> {
    return this.retryAfterSeconds === undefined
      ? {}
      : { "Retry-After": String(this.retryAfterSeconds) };
  }
}

/** True for any error of this hierarchy (also across duplicated module copies). */
export function isAppError(value: unknown): value is AppError {
  return (
    value instanceof AppError ||
    (value instanceof Error &&
      typeof (value as Partial<AppError>).status === "number" &&
      typeof (value as Partial<AppError>).code === "string" &&
      typeof (value as Partial<AppError>).toBody === "function")
  );
}
