import { ERROR_CODES, type ErrorCode } from "@zigznote/shared";

/**
 * What an answer with each error code looks like, for the document's examples (one per code the
 * operation lists, so `/docs` shows real bodies instead of a made-up `additionalProp1`).
 *
 * `details` lists every key the API puts there for that code (optional ones included): the test
 * suite compares each error it receives with its code's example and fails on a key the example
 * does not show (test/support/openApiConformance.ts). A code without an entry here answers
 * `details: {}` and its catalogue description stands in for the message.
 */
interface ErrorExample {
  message: string;
  details?: Record<string, unknown>;
  /** Keys other answers with the code carry instead of some the example shows. */
  otherKeys?: readonly string[];
}

const EXAMPLES: Partial<Record<ErrorCode, ErrorExample>> = {
  VALIDATION_ERROR: {
    message: "endTime must be after startTime",
    details: {
      fields: [
        { path: "endTime", message: "endTime must be after startTime", code: "invalid_range" },
      ],
    },
  },
  BAD_REQUEST: { message: "Bad request" },
  INVALID_JSON: { message: "Request body is not valid JSON" },
  INVALID_CURSOR: {
    message: "Invalid cursor: pass back a nextCursor exactly as received",
    details: { fields: [{ path: "cursor", message: "Invalid cursor", code: "invalid_cursor" }] },
  },
  EMPTY_RECORDING: { message: "The recording is empty: send its bytes as the request body" },
  UPLOAD_ABORTED: { message: "The upload was interrupted" },
  PLAN_NOT_PURCHASABLE: {
    message: "The free plan cannot be bought",
    details: { planSlug: "free" },
  },
  DATE_IN_PAST: {
    message: "graceEndsAt must be in the future",
    details: { graceEndsAt: "2026-11-01T00:00:00.000Z", now: "2026-11-30T15:00:00.000Z" },
    // A waiver names its date `until`.
    otherKeys: ["until"],
  },
  GRACE_NOT_EXTENDED: {
    message: "The new grace end must be later than the current one",
    details: { graceEndsAt: "2026-12-07T15:00:00.000Z" },
  },
  MISSING_CREDENTIALS: { message: "Send Authorization: Bearer <token>" },
  INVALID_AUTHORIZATION_HEADER: {
    message: "The Authorization header must be `Bearer <token>`",
  },
  INVALID_TOKEN: { message: "The session token is invalid" },
  TOKEN_EXPIRED: { message: "The session token has expired" },
  TOKEN_NOT_YET_VALID: { message: "The session token is not valid yet" },
  INVALID_AUTHORIZED_PARTY: {
    message: "The session token was issued for another application",
  },
  SESSION_AUTH_NOT_CONFIGURED: {
    message:
      "Session tokens are not accepted: this server has neither CLERK_JWT_KEY (Clerk's PEM " +
      "public key) nor CLERK_SECRET_KEY set.",
    details: { settings: ["CLERK_JWT_KEY", "CLERK_SECRET_KEY"], devToken: "pnpm -s dev:token" },
  },
  INVALID_API_KEY: { message: "Invalid API key" },
  API_KEY_REVOKED: { message: "This API key was revoked" },
  API_KEY_EXPIRED: { message: "This API key has expired" },
  USER_DELETED: { message: "This user was deleted" },
  SESSION_PENDING: {
    message: "This session has tasks to finish in Clerk before it can be used (status pending)",
  },
  ORGANIZATION_DELETED: { message: "This organization was deleted" },
  SUBSCRIPTION_SUSPENDED: {
    message: "The subscription is suspended for non-payment: pay the open invoice to write again",
    details: { planSlug: "pro" },
  },
  NO_ACTIVE_ORGANIZATION: {
    message: "Select an organization: this session has no active organization",
  },
  MEMBERSHIP_REMOVED: {
    message: "You were removed from this organization: refresh the session",
  },
  INSUFFICIENT_SCOPE: {
    message: "This action needs the meetings:write scope",
    details: { requiredScope: "meetings:write" },
  },
  ADMIN_REQUIRED: {
    message: "This action needs an admin's session; API keys cannot perform it",
    details: { requiredRole: "admin", reason: "api_key" },
  },
  PLAN_LIMIT_MEETINGS: {
    message: "The plan's monthly meeting limit is reached: upgrade to record more meetings",
    details: { limit: 10, current: 10, planSlug: "free" },
  },
  PLAN_LIMIT_STORAGE: {
    message:
      "Storage is over the plan's limit and its grace period is over: delete recordings or upgrade",
    details: { limit: 1073741824, current: 2147483648, planSlug: "free" },
  },
  PLAN_LIMIT_TEAM_MEMBERS: {
    message: "The plan's team member limit is reached: upgrade or remove members first",
    details: { limit: 3, current: 3, planSlug: "free" },
  },
  PLATFORM_ADMIN_REQUIRED: {
    message: "This needs a platform admin (an organization's admin is not one)",
    details: { reason: "not_platform_admin" },
  },
  CSRF_ORIGIN_REFUSED: {
    message: "A write authenticated by the session cookie must come from an allowed origin",
    details: { origin: "https://elsewhere.example" },
  },
  NOT_FOUND: { message: "Meeting not found" },
  ROUTE_NOT_FOUND: { message: "No route for GET /api/v1/meeting" },
  METHOD_NOT_ALLOWED: {
    message: "PUT is not allowed here; use GET, PATCH, DELETE, HEAD",
    details: { allowed: ["GET", "PATCH", "DELETE", "HEAD"] },
  },
  CONFLICT: {
    message: "The meeting changed meanwhile; retry",
    // The billing portal's refusal to cancel a subscription that already ends says when.
    otherKeys: ["currentPeriodEnd"],
  },
  BOT_ALREADY_ACTIVE: {
    message: "This meeting already has an active bot; remove it before sending another one",
    details: { meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10" },
  },
  BOT_ALREADY_ACTIVE_FOR_URL: {
    message:
      "A bot is already in this call for another meeting of your organization with the same meeting link",
    details: {
      meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10",
      conflictingMeetingId: "0b1f2d4e-8a7c-4f3b-a1d2-6c5e4f3a2b10",
    },
  },
  BOT_PENDING: {
    message: "The bot is still being created; try again in a moment",
    details: { meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10" },
  },
  BOT_NOT_IN_CALL_YET: {
    message:
      "The bot is still joining the call, and Recall cannot make a bot leave before it is in: try again in a moment",
    details: { meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10", botStatus: "in_waiting_room" },
  },
  BOT_RESERVATION_LOST: {
    message: "The meeting changed while its bot was being created; retry",
    details: { meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10" },
  },
  MEETING_URL_NOT_SUPPORTED: {
    message: "The meeting's link is not a supported meeting link; update it",
    details: {
      meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10",
      reason: "Not a Zoom, Google Meet, Microsoft Teams or Webex meeting link",
    },
  },
  MEETING_HAS_ACTIVE_BOT: {
    message: "The meeting link cannot change while a bot is in the meeting; remove the bot first",
    details: { meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10" },
  },
  SUBSCRIPTION_EXISTS: {
    message:
      "The organization already has a subscription: change its plan with POST /api/v1/billing/subscription",
    details: { planSlug: "pro", status: "active" },
    // When a Checkout Session was paid meanwhile.
    otherKeys: ["checkoutSessionId"],
  },
  VERSION_CONFLICT: {
    message: "The violation changed since it was read (version 3, not 2): reload and retry",
    details: { expectedVersion: 2, currentVersion: 3 },
  },
  VIOLATION_RESOLVED: {
    message: "The violation is resolved; nothing to change",
    details: { resolvedAt: "2026-11-29T08:00:00.000Z" },
  },
  NOTICE_PENDING: { message: "The notice is still waiting to be sent", details: { attempts: 1 } },
  JOB_NOT_FOUND: {
    message: "No job is named cleanupEverything",
    details: { jobs: ["cleanupOrphanedBots", "deliverNotifications"] },
  },
  JOB_ALREADY_RUNNING: {
    message: "A run of this job is in progress (or ran this very instant)",
    details: { reason: "previous_run_in_progress" },
  },
  WEBHOOK_IN_PROGRESS: {
    message: "The same event is being processed by another delivery; redeliver later",
    details: { provider: "stripe", eventId: "evt_1QxYz2AbCdEf" },
  },
  PAYLOAD_TOO_LARGE: {
    message: "Recording is larger than the limit of 2147483648 bytes",
    details: { maxBytes: 2147483648, contentLength: 3221225472 },
    // A direct upload's declared size.
    otherKeys: ["sizeBytes"],
  },
  UNSUPPORTED_MEDIA_TYPE: {
    message: "Send the body as JSON with Content-Type: application/json",
    details: { contentType: "text/plain", accepted: ["application/json"] },
  },
  RANGE_NOT_SATISFIABLE: {
    message: "The requested range is not satisfiable",
    details: { sizeBytes: 1048576 },
  },
  RATE_LIMITED: {
    message:
      "The organization's budget of 600 requests a minute is spent; retry after Retry-After seconds",
    details: { policy: "organization", limit: 600, windowSeconds: 60, retryAfterSeconds: 17 },
  },
  INVALID_IDEMPOTENCY_KEY: {
    message: "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID, say)",
    details: { length: 300 },
  },
  IDEMPOTENCY_KEY_IN_USE: {
    message:
      "A request with this Idempotency-Key is still running; retry after Retry-After for its answer",
  },
  IDEMPOTENCY_KEY_REUSED: {
    message: "This Idempotency-Key was used for another request; send a new key for a new request",
    details: { firstRequest: { method: "POST", path: "/api/v1/meetings" } },
  },
  ALREADY_MEMBER: {
    message: "The user is already a member of this organization",
    details: { userId: "user_2abcDEF" },
  },
  CLERK_USER_NOT_FOUND: {
    message: "Clerk has no user with this id",
    details: { userId: "user_2abcDEF" },
  },
  CLERK_REJECTED: {
    message: "Clerk refused: the organization has reached its membership limit",
    details: { clerkStatus: 403, clerkCode: "organization_membership_quota_exceeded" },
  },
  CLERK_UNAVAILABLE: {
    message: "Clerk did not answer; retry later",
    details: { clerkStatus: 503, clerkCode: null },
  },
  UPLOAD_INCOMPLETE: {
    message: "1 of 3 parts are not in the store yet",
    details: { missingParts: [2], expectedParts: 3 },
  },
  UPLOAD_SIZE_MISMATCH: {
    message: "Parts in the store have other sizes than the upload declared",
    details: { parts: [{ partNumber: 2, expectedBytes: 8388608, storedBytes: 1000 }] },
    // A single-part upload names the object's sizes.
    otherKeys: ["expectedBytes", "storedBytes"],
  },
  UPLOAD_CLOSED: {
    message: "The upload is completed: start a new one",
    details: { status: "completed", expiresAt: "2026-12-07T04:12:03.045Z" },
  },
  TOO_MANY_REQUESTS: {
    message: "Too many failed API key attempts; try again later",
    details: { retryAfterSeconds: 900 },
  },
  INTERNAL_ERROR: { message: "Internal server error" },
  STRIPE_ERROR: {
    message: "Stripe could not create the subscription",
    details: { stripeType: "StripeCardError", stripeCode: "card_declined", stripeStatus: 402 },
  },
  RECALL_UNAVAILABLE: {
    message:
      "Recall is unavailable: could not create a bot after 3 attempts (HTTP 503: Service Unavailable)",
    details: { attempts: 3 },
    // A 5xx answer that is not retried carries Recall's status instead.
    otherKeys: ["recallStatus"],
  },
  RECALL_RATE_LIMITED: {
    message: "Recall is busy and asked to retry in 120 s (asked to create a bot); try again later",
    details: { recallStatus: 429, retryAfterSeconds: 120 },
  },
  RECALL_REJECTED: {
    message: "Recall refused to create a bot (HTTP 400: meeting_url is not a valid meeting link)",
    details: { recallStatus: 400, recallDetail: "meeting_url is not a valid meeting link" },
  },
  RECALL_NOT_FOUND: {
    message: "Recall does not know the bot",
    details: { recallStatus: 404 },
  },
  RECALL_BAD_RESPONSE: {
    message: "Recall answered an unusable response when asked to create a bot",
  },
  DATABASE_UNAVAILABLE: { message: "The database is not answering; retry shortly" },
  ADMIN_CONSOLE_NOT_BUILT: {
    message:
      "The admin console is not built: run `pnpm --filter @zigznote/admin build` (or `pnpm start`)",
    details: { dir: "apps/admin/dist" },
  },
  PROVIDER_NOT_CONFIGURED: {
    message: "Recall is not configured on this server",
    details: { provider: "recall", variables: ["RECALL_API_KEY"] },
  },
};

/** The example body of an answer with `code` (see the module comment). */
export function errorExample(code: ErrorCode): {
  error: { code: ErrorCode; message: string; details: Record<string, unknown> };
  requestId: string;
} {
  const example = EXAMPLES[code];
  return {
    error: {
      code,
      message: example?.message ?? ERROR_CODES[code].description,
      details: example?.details ?? {},
    },
    requestId: "0b6a7f2e-6f1d-4c3a-9e5b-2d8f1c7a4e90",
  };
}

/** The detail keys an answer with `code` may carry: its example's, and their variants. */
export function documentedDetailKeys(code: ErrorCode): readonly string[] {
  const example = EXAMPLES[code];
  return [...Object.keys(example?.details ?? {}), ...(example?.otherKeys ?? [])];
}
