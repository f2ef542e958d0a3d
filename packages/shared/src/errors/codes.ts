/**
 * Every error code the API answers, with its status and what it means. This is the one source:
 * the error classes only accept these codes (`AppErrorOptions.code` is an `ErrorCode`), each
 * route declares the codes its handler can answer from this list, and the OpenAPI document lists
 * them per response, so a client author sees what to branch on and the two cannot drift (the
 * test suite checks every error a route answers against its documented codes).
 *
 * A code never changes meaning once released; add a new one instead.
 */
export const ERROR_CODES = {
  // 400
  BAD_REQUEST: { status: 400, description: "The request could not be read" },
  VALIDATION_ERROR: {
    status: 400,
    description: "A parameter or body field is invalid; `details.fields` lists each one",
  },
  INVALID_JSON: {
    status: 400,
    description: "The body is not valid JSON, or is JSON but not an object",
  },
  INVALID_URL_ENCODING: {
    status: 400,
    description: "The URL path is not valid percent-encoded UTF-8",
  },
  INVALID_CURSOR: {
    status: 400,
    description: "The cursor was not one this API returned; pass `nextCursor` back unchanged",
  },
  EMPTY_RECORDING: { status: 400, description: "An upload with no bytes; nothing was stored" },
  UPLOAD_ABORTED: { status: 400, description: "The upload was interrupted; nothing was stored" },
  PLAN_NOT_PURCHASABLE: {
    status: 400,
    description: "The plan has no Stripe price (the free plan is reached by cancelling)",
  },
  INVALID_WEBHOOK_EVENT: { status: 400, description: "The webhook body is not an event" },
  WEBHOOK_SIGNATURE_MISSING: {
    status: 400,
    description: "The provider's signature headers are missing",
  },

  INVALID_IDEMPOTENCY_KEY: {
    status: 400,
    description: "`Idempotency-Key` must be 1-255 printable ASCII characters",
  },

  DATE_IN_PAST: { status: 400, description: "The date must be in the future" },
  GRACE_NOT_EXTENDED: {
    status: 400,
    description: "The new grace end must be later than the current one",
  },

  // 401
  UNAUTHORIZED: { status: 401, description: "Not authenticated" },
  MISSING_CREDENTIALS: {
    status: 401,
    description: "No `Authorization: Bearer <token>` header (or `__session` cookie)",
  },
  INVALID_AUTHORIZATION_HEADER: {
    status: 401,
    description: "The Authorization header is not `Bearer <token>`",
  },
  INVALID_TOKEN: { status: 401, description: "The session token is not valid" },
  TOKEN_EXPIRED: { status: 401, description: "The session token has expired; refresh it" },
  TOKEN_NOT_YET_VALID: { status: 401, description: "The session token is not valid yet" },
  INVALID_AUTHORIZED_PARTY: {
    status: 401,
    description: "The session token was issued for another application (`azp`)",
  },
  SESSION_AUTH_NOT_CONFIGURED: {
    status: 401,
    description: "This server accepts no session tokens (CLERK_JWT_KEY or CLERK_SECRET_KEY unset)",
  },
  INVALID_API_KEY: { status: 401, description: "The API key is unknown or malformed" },
  API_KEY_REVOKED: { status: 401, description: "The API key was revoked" },
  API_KEY_EXPIRED: { status: 401, description: "The API key has expired" },
  USER_DELETED: { status: 401, description: "The signed-in user was deleted" },
  SESSION_PENDING: {
    status: 401,
    description:
      "The session has tasks to finish in Clerk first (`sts: pending`: choose an organization, reset the password, ...)",
  },
  WEBHOOK_SIGNATURE_INVALID: {
    status: 401,
    description: "The webhook signature does not match the body (or is too old)",
  },
  ORGANIZATION_DELETED: {
    status: [401, 403],
    description:
      "The organization was deleted (401 for its API keys, 403 for its members' sessions)",
  },

  // 402
  PAYMENT_REQUIRED: { status: 402, description: "Billing forbids this action" },
  SUBSCRIPTION_SUSPENDED: {
    status: 402,
    description: "Suspended for non-payment: reads work, writes wait for the open invoice",
  },
  PAYMENT_DISPUTED: {
    status: 402,
    description:
      "A payment is disputed with the bank and this server makes the organization read-only until the dispute closes (DISPUTE_READ_ONLY)",
  },

  // 403
  FORBIDDEN: { status: 403, description: "Not allowed" },
  NO_ACTIVE_ORGANIZATION: {
    status: 403,
    description: "The session has no active organization; select one in Clerk",
  },
  MEMBERSHIP_REMOVED: {
    status: 403,
    description:
      "The user was removed from the session's organization after the token was issued; refresh the session",
  },
  INSUFFICIENT_SCOPE: { status: 403, description: "The API key lacks the route's scope" },
  ADMIN_REQUIRED: {
    status: 403,
    description: "Organization admins' sessions only (API keys are refused)",
  },
  PLAN_LIMIT_MEETINGS: {
    status: 403,
    description: "The plan's monthly meeting limit is reached (or exceeded after a downgrade)",
  },
  PLAN_LIMIT_STORAGE: {
    status: 403,
    description: "Storage is over the plan's limit and its grace period is over",
  },
  PLATFORM_ADMIN_REQUIRED: {
    status: 403,
    description:
      "Platform admins' sessions only (an organization's admin is not one; API keys never)",
  },
  CSRF_ORIGIN_REFUSED: {
    status: 403,
    description: "A write authenticated by the session cookie from an origin that is not allowed",
  },
  PLAN_LIMIT_TEAM_MEMBERS: { status: 403, description: "The plan's team member limit is reached" },

  // 404
  NOT_FOUND: {
    status: 404,
    description:
      "No such resource in the caller's organization (another organization's is the same)",
  },
  ROUTE_NOT_FOUND: { status: 404, description: "No route for this method and path" },
  BOT_NOT_FOUND: { status: 404, description: "The meeting has no bot" },
  BOT_NOT_ACTIVE: { status: 404, description: "The meeting has no active bot" },
  NO_ACTIVE_SUBSCRIPTION: { status: 404, description: "The organization has no live subscription" },
  PLAN_NOT_FOUND: { status: 404, description: "No plan with this slug" },
  ORGANIZATION_NOT_FOUND: { status: 404, description: "No such organization" },
  VIOLATION_NOT_FOUND: { status: 404, description: "No such plan violation" },
  NOTICE_NOT_FOUND: { status: 404, description: "No such notice" },
  JOB_NOT_FOUND: { status: 404, description: "No scheduled job has this name" },
  CLERK_USER_NOT_FOUND: { status: 404, description: "Clerk has no user with this id" },

  // 405
  METHOD_NOT_ALLOWED: { status: 405, description: "The path exists; `Allow` lists its methods" },

  // 408
  REQUEST_TIMEOUT: {
    status: 408,
    description:
      "The request did not arrive in full in time (headers within 1 minute, all of it within 5)",
  },

  // 409
  CONFLICT: { status: 409, description: "Conflicts with the current state" },
  BOT_ALREADY_ACTIVE: { status: 409, description: "The meeting already has an active bot" },
  BOT_ALREADY_ACTIVE_FOR_URL: {
    status: 409,
    description: "Another meeting with the same link already has an active bot",
  },
  BOT_PENDING: {
    status: 409,
    description: "The bot is still being created; retry shortly",
    isTransient: true,
  },
  BOT_NOT_IN_CALL_YET: {
    status: 409,
    description:
      "The bot is still joining the call (or in its waiting room) and cannot be made to leave before it is in; retry shortly",
    isTransient: true,
  },
  BOT_RESERVATION_LOST: {
    status: 409,
    description: "The meeting changed while its bot was being created; retry",
    isTransient: true,
  },
  MEETING_URL_NOT_SUPPORTED: {
    status: 409,
    description: "The meeting's link is not a supported meeting link; update it first",
  },
  MEETING_HAS_ACTIVE_BOT: {
    status: 409,
    description: "The link cannot change while a bot is in the call",
  },
  BILLING_CHANGE_IN_PROGRESS: {
    status: 409,
    description: "Another billing change of this organization is under way; retry shortly",
    isTransient: true,
  },
  SUBSCRIPTION_EXISTS: {
    status: 409,
    description: "The organization already has a live subscription: change its plan instead",
  },
  VERSION_CONFLICT: {
    status: 409,
    description:
      "Someone changed the target since you read it (`expectedVersion`); reload and retry",
  },
  VIOLATION_RESOLVED: { status: 409, description: "The violation is resolved; nothing to change" },
  NOTICE_PENDING: {
    status: 409,
    description: "The notice has not been sent yet",
    isTransient: true,
  },
  NOT_SUSPENDED: { status: 409, description: "The organization has no suspended subscription" },
  JOB_ALREADY_RUNNING: {
    status: 409,
    description: "A run of this job is in progress",
    isTransient: true,
  },
  IDEMPOTENCY_KEY_IN_USE: {
    status: 409,
    description:
      "A request with this `Idempotency-Key` is still running; retry after `Retry-After` for its answer " +
      "(1 s while its claim is renewed; the seconds until the claim lapses when it no longer is)",
  },
  ALREADY_MEMBER: {
    status: 409,
    description: "The user is already a member of the organization (at Clerk, or being added)",
  },
  ORGANIZATION_NOT_IN_CLERK: {
    status: 409,
    description: "The organization has no Clerk organization: members are managed in Clerk",
  },
  WEBHOOK_IN_PROGRESS: {
    status: 409,
    description: "The same event is being processed by another delivery; redeliver later",
  },
  UPLOAD_INCOMPLETE: {
    status: 409,
    description:
      "Parts of the direct upload are not in the store yet (`details.missingParts`); upload them, then complete",
    isTransient: true,
  },
  UPLOAD_SIZE_MISMATCH: {
    status: 409,
    description:
      "The store holds other sizes than the upload declared (`details`); upload those parts again, then complete",
    isTransient: true,
  },
  UPLOAD_CLOSED: {
    status: 409,
    description: "The direct upload was completed, aborted or has expired; start a new one",
  },

  // 413, 415, 416
  PAYLOAD_TOO_LARGE: { status: 413, description: "The body is larger than the route accepts" },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: "The body's Content-Type is not accepted" },
  RANGE_NOT_SATISFIABLE: {
    status: 416,
    description: "The Range lies outside the recording; `Content-Range: bytes */<size>`",
  },

  // 422
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    description:
      "This `Idempotency-Key` was used for another request (method, path or body); use a new key",
  },

  // 429
  RATE_LIMITED: {
    status: 429,
    description:
      "The organization's request budget (or this address's, unauthenticated) is spent; wait `Retry-After` seconds",
  },
  TOO_MANY_REQUESTS: {
    status: 429,
    description: "Too many requests or failed attempts; wait `Retry-After` seconds",
  },

  // 431
  REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    description: "The request's headers are larger than the server reads (16 KiB in all)",
  },

  // 5xx
  INTERNAL_ERROR: { status: 500, description: "Unexpected error (logged with the request id)" },
  WEBHOOK_HANDLER_FAILED: {
    status: 500,
    description: "The event was not recorded; the provider should redeliver it",
  },
  BAD_GATEWAY: { status: 502, description: "An upstream provider failed" },
  STRIPE_ERROR: { status: 502, description: "Stripe refused or failed the call" },
  RECALL_UNAVAILABLE: { status: 502, description: "Recall.ai did not answer (after retries)" },
  RECALL_RATE_LIMITED: { status: 502, description: "Recall.ai kept rate limiting (after retries)" },
  RECALL_REJECTED: { status: 502, description: "Recall.ai refused the request" },
  RECALL_NOT_FOUND: { status: 502, description: "Recall.ai does not know the bot" },
  RECALL_BAD_RESPONSE: { status: 502, description: "Recall.ai answered something unusable" },
  CLERK_REJECTED: { status: 502, description: "Clerk refused the request; nothing changed there" },
  CLERK_UNAVAILABLE: {
    status: 502,
    description: "Clerk did not answer; the seat stays reserved until Clerk's outcome is known",
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    description: "A dependency is unavailable; retry after `Retry-After` when sent",
  },
  DATABASE_UNAVAILABLE: {
    status: 503,
    description: "The database is not answering; retry after `Retry-After`",
  },
  STORAGE_UNAVAILABLE: {
    status: 503,
    description: "The recording store failed or did not answer; retry after `Retry-After`",
  },
  ADMIN_CONSOLE_NOT_BUILT: {
    status: 503,
    description: "The admin console's files are not built (`pnpm --filter @zigznote/admin build`)",
  },
  PROVIDER_NOT_CONFIGURED: {
    status: 503,
    description:
      "A provider is not configured on this server; `details.variables` names what to set",
  },
} as const satisfies Record<
  string,
  { status: number | readonly number[]; description: string; isTransient?: true }
>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The statuses `code` is answered with (one for all but a few). */
export function statusesOf(code: ErrorCode): readonly number[] {
  const { status } = ERROR_CODES[code];
  return typeof status === "number" ? [status] : status;
}

/**
 * Whether `code` refuses a write for the moment only (something still under way: a bot being
 * created or joining, a billing change, a job run, an upload's parts not all in the store), so
 * that the same request may succeed shortly. Such an answer is not kept under an
 * `Idempotency-Key`: the retry its message asks for runs for real.
 */
export function isTransientCode(code: ErrorCode): boolean {
  return "isTransient" in ERROR_CODES[code];
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
