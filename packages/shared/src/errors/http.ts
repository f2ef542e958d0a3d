/**
 * The one error hierarchy of the API. Services throw these; the error handler turns each into
 * `{ error: { code, message, details? }, requestId }` with the class's status. Codes are stable:
 * clients branch on them, so a code never changes meaning once released.
 */

import { ERROR_CODES, type ErrorCode } from "./codes";

export type ErrorDetails = Record<string, unknown>;

export interface ErrorBody {
  /** `details` is always present (`{}` when there is nothing to add). */
  error: { code: string; message: string; details: ErrorDetails };
  requestId?: string;
}

/** The statuses the catalogue (`ERROR_CODES`) answers `C` with, as a union. */
type StatusOf<C extends ErrorCode> = (typeof ERROR_CODES)[C]["status"] extends infer S
  ? S extends readonly number[]
    ? S[number]
    : S
  : never;

/**
 * The codes the catalogue answers with status `S`: the only codes a class of that status takes,
 * so the status follows from the code (`new NotFoundError("", { code: "PLAN_LIMIT_STORAGE" })`
 * does not compile). A status known only at run time (`number`) admits every code.
 */
export type CodeOfStatus<S extends number> = number extends S
  ? ErrorCode
  : { [C in ErrorCode]: S extends StatusOf<C> ? C : never }[ErrorCode];

/**
 * What every error constructor takes after its message: one shape for all of them, so a call
 * site reads the same whatever the class (`new ConflictError("busy", { code: "BOT_ALREADY_ACTIVE" })`).
 */
export interface AppErrorOptions<S extends number = number> {
  /** Stable machine-readable code from `ERROR_CODES` answered with the class's status; each class has its default. */
  code?: CodeOfStatus<S>;
  details?: ErrorDetails;
  /** The underlying error, for logs (never sent to clients). */
  cause?: unknown;
}

/**
 * Base class: an error with an HTTP status, a stable machine-readable code and optional details.
 * The code must be one the catalogue answers with `status` (see `CodeOfStatus`); `httpError`
 * looks the status up instead.
 */
export class AppError<S extends number = number> extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(status: S, message: string, options: AppErrorOptions<S> & { code: CodeOfStatus<S> }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.code = options.code;
    this.details = options.details;
  }

  /** Headers the response must carry besides the body (e.g. Retry-After). */
  headers(): Record<string, string> {
    return {};
  }

  toBody(requestId?: string): ErrorBody {
    const error: ErrorBody["error"] = {
      code: this.code,
      message: this.message,
      details: this.details ?? {},
    };
    return requestId === undefined ? { error } : { error, requestId };
  }
}

/** `options` with the class's default code filled in. */
function withCode<S extends number>(
  options: AppErrorOptions<S>,
  code: CodeOfStatus<S>,
): AppErrorOptions<S> & { code: CodeOfStatus<S> } {
  return { ...options, code: options.code ?? code };
}

/** The codes the catalogue answers with exactly one status: those `httpError` can look up. */
export type SingleStatusCode = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C]["status"] extends number ? C : never;
}[ErrorCode];

/**
 * An `AppError` whose status is the catalogue's for `code` (`ERROR_CODES`), for the answers no
 * class names (405 `METHOD_NOT_ALLOWED`, 500 `WEBHOOK_HANDLER_FAILED`).
 */
export function httpError(
  code: SingleStatusCode,
  message: string,
  options: Omit<AppErrorOptions, "code"> = {},
): AppError {
  return new AppError(ERROR_CODES[code].status, message, { ...options, code });
}

/** 400: the request is malformed in a way that is not a field validation (bad JSON, bad header). */
export class BadRequestError extends AppError<400> {
  constructor(message = "Bad request", options: AppErrorOptions<400> = {}) {
    super(400, message, withCode(options, "BAD_REQUEST"));
  }
}

export interface FieldIssue {
  path: string;
  message: string;
  code?: string;
}

/** 400: one or more fields failed validation; `details.fields` lists each one. */
export class ValidationError extends AppError<400> {
  readonly fields: FieldIssue[];

  constructor(
    message = "Request validation failed",
    options: Omit<AppErrorOptions<400>, "details"> & { fields: FieldIssue[] } = { fields: [] },
  ) {
    super(400, message, {
      ...withCode<400>(options, "VALIDATION_ERROR"),
      details: { fields: options.fields },
    });
    this.fields = options.fields;
  }
}

/**
 * 401: missing, malformed, expired or otherwise unacceptable credentials. `challenge` is the
 * `WWW-Authenticate` the answer carries (RFC 9110 11.6.1): the API's authentication sets it
 * (`withChallenge`), a webhook's refused signature has none. It travels with the error rather
 * than being set on the response, so an answer that replaces the 401 (a 429 of the address's
 * request budget) does not tell the client to authenticate.
 */
export class UnauthorizedError extends AppError<401> {
  readonly challenge: string | undefined;

  constructor(
    message = "Authentication required",
    options: AppErrorOptions<401> & { challenge?: string } = {},
  ) {
    const { challenge, ...rest } = options;
    super(401, message, withCode<401>(rest, "UNAUTHORIZED"));
    this.challenge = challenge;
  }

  /** `error` (any 401 of this hierarchy) as an UnauthorizedError answering with `challenge`. */
  static withChallenge(error: AppError, challenge: string): UnauthorizedError {
    return new UnauthorizedError(error.message, {
      // A 401's code is one the catalogue answers with 401.
      code: error.code as CodeOfStatus<401>,
      details: error.details,
      cause: error.cause,
      challenge,
    });
  }

  override headers(): Record<string, string> {
    return this.challenge === undefined ? {} : { "WWW-Authenticate": this.challenge };
  }
}

/** 402: the organization's billing state forbids this action (e.g. suspended for non-payment). */
export class PaymentRequiredError extends AppError<402> {
  constructor(message = "Payment required", options: AppErrorOptions<402> = {}) {
    super(402, message, withCode(options, "PAYMENT_REQUIRED"));
  }
}

/** 403: authenticated, but not allowed (role, scope, plan limit). */
export class ForbiddenError extends AppError<403> {
  constructor(message = "Forbidden", options: AppErrorOptions<403> = {}) {
    super(403, message, withCode(options, "FORBIDDEN"));
  }
}

/** 404: no such resource, or not visible to the caller's organization (never reveals which). */
export class NotFoundError extends AppError<404> {
  constructor(message = "Resource not found", options: AppErrorOptions<404> = {}) {
    super(404, message, withCode(options, "NOT_FOUND"));
  }
}

/** 409: the request conflicts with the current state (duplicate, already active, ...). */
export class ConflictError extends AppError<409> {
  constructor(message = "Conflict with the current state", options: AppErrorOptions<409> = {}) {
    super(409, message, withCode(options, "CONFLICT"));
  }
}

/** 413: the request body is larger than this route accepts. */
export class PayloadTooLargeError extends AppError<413> {
  constructor(message = "Request body too large", options: AppErrorOptions<413> = {}) {
    super(413, message, withCode(options, "PAYLOAD_TOO_LARGE"));
  }
}

/** 415: the request body's media type is not one this route accepts. */
export class UnsupportedMediaTypeError extends AppError<415> {
  constructor(message = "Unsupported media type", options: AppErrorOptions<415> = {}) {
    super(415, message, withCode(options, "UNSUPPORTED_MEDIA_TYPE"));
  }
}

/** 416: the requested byte range lies outside the resource; says its size in `Content-Range`. */
export class RangeNotSatisfiableError extends AppError<416> {
  readonly sizeBytes: number;

  constructor(sizeBytes: number, message = "The requested range is not satisfiable") {
    super(416, message, { code: "RANGE_NOT_SATISFIABLE", details: { sizeBytes } });
    this.sizeBytes = sizeBytes;
  }

  override headers(): Record<string, string> {
    return { "Content-Range": `bytes */${this.sizeBytes}` };
  }
}

/** 422: the request is well-formed but cannot be processed as it stands. */
export class UnprocessableContentError extends AppError<422> {
  constructor(
    message = "The request cannot be processed",
    options: AppErrorOptions<422> & { code: CodeOfStatus<422> },
  ) {
    super(422, message, options);
  }
}

/** 429: too many requests or attempts; carries how long to wait, sent as `Retry-After`. */
export class TooManyRequestsError extends AppError<429> {
  readonly retryAfterSeconds: number;

  constructor(
    message = "Too many requests",
    options: AppErrorOptions<429> & { retryAfterSeconds: number } = { retryAfterSeconds: 1 },
  ) {
    const seconds = Math.max(1, Math.ceil(options.retryAfterSeconds));
    super(429, message, {
      ...withCode<429>(options, "TOO_MANY_REQUESTS"),
      details: { ...options.details, retryAfterSeconds: seconds },
    });
    this.retryAfterSeconds = seconds;
  }

  override headers(): Record<string, string> {
    return { "Retry-After": String(this.retryAfterSeconds) };
  }
}

/** 500: an unexpected failure. The message sent to clients is always generic. */
export class InternalServerError extends AppError<500> {
  constructor(message = "Internal server error", options: AppErrorOptions<500> = {}) {
    super(500, message, withCode(options, "INTERNAL_ERROR"));
  }
}

/** 502: an upstream provider (Recall, Stripe, Clerk) failed or answered something unusable. */
export class BadGatewayError extends AppError<502> {
  constructor(message = "Upstream provider failed", options: AppErrorOptions<502> = {}) {
    super(502, message, withCode(options, "BAD_GATEWAY"));
  }
}

/** 503: a dependency this request needs (database, Redis, a provider) is unavailable right now. */
export class ServiceUnavailableError extends AppError<503> {
  readonly retryAfterSeconds: number | undefined;

  constructor(
    message = "Service unavailable",
    options: AppErrorOptions<503> & { retryAfterSeconds?: number } = {},
  ) {
    super(503, message, withCode<503>(options, "SERVICE_UNAVAILABLE"));
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  override headers(): Record<string, string> {
    return this.retryAfterSeconds === undefined
      ? {}
      : { "Retry-After": String(this.retryAfterSeconds) };
  }
}

/** The code of `ProviderNotConfiguredError`, for code that only sees an AppError. */
export const PROVIDER_NOT_CONFIGURED = "PROVIDER_NOT_CONFIGURED";

/**
 * 503 `PROVIDER_NOT_CONFIGURED`: the deployment lacks the configuration of a provider this request
 * needs (Stripe, Recall, a webhook signing secret). `details` name the provider and the
 * environment variables to set. It is the operator's to fix, not a fault: nothing was written,
 * and it is logged as a warning without a stack.
 */
export class ProviderNotConfiguredError extends ServiceUnavailableError {
  readonly provider: string;
  readonly variables: readonly string[];

  constructor(
    message: string,
    options: Omit<AppErrorOptions, "code" | "details"> & { provider: string; variables: string[] },
  ) {
    super(message, {
      cause: options.cause,
      code: PROVIDER_NOT_CONFIGURED,
      details: { provider: options.provider, variables: options.variables },
    });
    this.provider = options.provider;
    this.variables = options.variables;
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
