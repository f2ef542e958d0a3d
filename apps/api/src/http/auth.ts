import type { Role, SqlDb } from "@zigznote/database";
import { ForbiddenError, type ErrorCode } from "@zigznote/shared";
import type { RequestHandler } from "express";
import type { Scope } from "./scopes";

/**
 * Who is calling, with what rights. Set by identity's `authenticate`. `organizationId` is null
 * only for a platform admin's session without an active organization: the routes that act within
 * an organization (`auth: "session"`) refuse it, and their handlers see an `OrgAuthContext`.
 */
export interface AuthContext {
  kind: "user" | "apiKey";
  organizationId: string | null;
  /** Local user id for a session; null for an API key. */
  userId: string | null;
  /** Local key id for an API key; null for a session. */
  apiKeyId: string | null;
  /** The user's role in the organization; null for an API key (keys have scopes, not roles). */
  role: Role | null;
  scopes: readonly Scope[];
  /**
   * A platform admin (an operator of zigznote, not of one organization): listed in
   * PLATFORM_ADMIN_USER_IDS or carrying the platform-admin session claim. Never an API key.
   */
  isPlatformAdmin?: boolean;
  /** Where the session token came from: the `__session` cookie or the Authorization header. */
  via?: "header" | "cookie";
  /**
   * The organization's plan as authentication read it (from the key cache for API keys): what
   * its request budget is. Null when unknown (then the smallest budget applies).
   */
  planSlug: string | null;
}

/** The caller of a route that acts within an organization: the one it acts for. */
export type OrgAuthContext = AuthContext & { organizationId: string };

/** Whether the caller acts for an organization (every caller but an organization-less session). */
export function hasOrganization(auth: AuthContext): auth is OrgAuthContext {
  return auth.organizationId !== null;
}

/**
 * 403 NO_ACTIVE_ORGANIZATION unless the caller acts for an organization: a route declared
 * `auth: "session"` acts within one (a platform admin may sign in without one for the console).
 */
export const requireOrganization: RequestHandler = (req, _res, next) => {
  if (hasOrganization(req.auth)) {
    next();
    return;
  }
  next(
    new ForbiddenError("Select an organization: this session has no active organization", {
      code: "NO_ACTIVE_ORGANIZATION",
    }),
  );
};

declare module "express-serve-static-core" {
  interface Request {
    /** Set by `authenticate` on every authenticated route; absent before it runs. */
    auth: AuthContext;
    /**
     * Set around `authenticate` by the request budgets (http/rateLimit.ts). Authentication may
     * call it with the caller it expects before it has decided (a cached API key, before its
     * round trip to Redis), so that the budget's count goes out with that round trip. The budget
     * keeps the count only if authentication ends with the same organization and budget.
     */
    onCallerKnown?: (caller: AuthContext) => void;
  }
}

/**
 * The write actions a route may declare (`write:`), by name. The kernel knows none: the feature
 * whose guard decides them registers them by augmenting this interface (billing/access.ts), and
 * supplies a `RouteGuard` per action with the codes it answers (`WriteGuards`).
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface WriteActions {}

/** A write action some feature's guard registered (see `WriteActions`). */
export type WriteAction = Extract<keyof WriteActions, string>;

/**
 * A check a route declares, registered with the kernel by the feature that owns it: the kernel
 * runs `check` after authentication (and the Idempotency-Key claim) and documents `codes` and
 * `note` on the route, knowing nothing else about it.
 */
export interface RouteGuard {
  /** Every code the guard can answer, documented on each route that declares it. */
  readonly codes: readonly ErrorCode[];
  /**
   * The codes with which it refuses the write, nothing written: wherever it decides (`check`, or
   * its `WriteGuard` in the write's transaction), an Idempotency-Key does not keep them.
   */
  readonly refusals: readonly ErrorCode[];
  /** What the operation's description says about the guard. */
  readonly note: string;
  /** Runs before the handler; absent when the feature decides in the write's own transaction. */
  readonly check?: (organizationId: string) => Promise<void>;
}

/** The guard of each write action, as its feature registered them. */
export type WriteGuards = Readonly<Record<WriteAction, RouteGuard>>;

/**
 * The write guard in the write's own transaction `tx` (billing's `guardWrite`): throws as the
 * route's `write:` guard documents, under the organization's row lock, so that a create counted
 * against a limit is decided and committed as one. Features that create what a plan limits
 * receive it from the composition root and call it in the transaction that writes the row.
 */
export type WriteGuard = (
  tx: SqlDb,
  input: {
    organizationId: string;
    action: WriteAction;
    /** The time of the write (its month, a grace period's end); the app's clock when omitted. */
    now?: Date;
  },
) => Promise<void>;

/** 403 INSUFFICIENT_SCOPE unless the caller (key, or user by role) holds `scope`. */
export function requireScope(scope: Scope): RequestHandler {
  return (req, _res, next) => {
    if (req.auth?.scopes.includes(scope)) {
      next();
      return;
    }
    next(
      new ForbiddenError(`This action needs the ${scope} scope`, {
        code: "INSUFFICIENT_SCOPE",
        details: { requiredScope: scope },
      }),
    );
  };
}

/**
 * A guard that passes only a person's session whose auth satisfies `isAllowed`; anyone else gets
 * the 403 `forbid` builds, told whether an API key called (keys are refused with their own reason,
 * since no scope can ever grant them these rights).
 */
function requireUserSession(
  isAllowed: (auth: AuthContext) => boolean,
  forbid: (isApiKey: boolean) => ForbiddenError,
): RequestHandler {
  return (req, _res, next) => {
    if (req.auth?.kind === "user" && isAllowed(req.auth)) {
      next();
      return;
    }
    next(forbid(req.auth?.kind === "apiKey"));
  };
}

/**
 * 403 ADMIN_REQUIRED unless an admin user calls. API keys never pass: admin-only routes (key
 * management, ...) need a person's session, so a leaked key cannot mint or revoke keys.
 */
export function requireRole(role: "admin"): RequestHandler {
  return requireUserSession(
    (auth) => auth.role === role,
    (isKey) =>
      new ForbiddenError(
        isKey
          ? "This action needs an admin's session; API keys cannot perform it"
          : "This action needs the admin role",
        {
          code: "ADMIN_REQUIRED",
          details: { requiredRole: role, ...(isKey ? { reason: "api_key" } : {}) },
        },
      ),
  );
}

/**
 * 403 PLATFORM_ADMIN_REQUIRED unless a platform admin's session calls (`/api/v1/admin`). An
 * organization's admin is not one; an API key never is, whatever its scopes.
 */
export const requirePlatformAdmin: RequestHandler = requireUserSession(
  (auth) => auth.isPlatformAdmin === true,
  (isKey) =>
    new ForbiddenError(
      isKey
        ? "Admin routes need a platform admin's session; API keys never reach them"
        : "This needs a platform admin (an organization's admin is not one)",
      {
        code: "PLATFORM_ADMIN_REQUIRED",
        details: { reason: isKey ? "api_key" : "not_platform_admin" },
      },
    ),
);
