import type { Role } from "@zigznote/database";
import { ForbiddenError, type ErrorCode } from "@zigznote/shared";
import type { RequestHandler } from "express";
import type { Scope } from "./scopes";

/** Who is calling, for which organization, with what rights. Set by identity's `authenticate`. */
export interface AuthContext {
  kind: "user" | "apiKey";
  organizationId: string;
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

declare module "express-serve-static-core" {
  interface Request {
    /** Set by `authenticate` on every authenticated route; absent before it runs. */
    auth: AuthContext;
  }
}

/**
 * What a write does, as billing judges it (`billing/access.ts` decides): `meeting.create`,
 * `bot.create`, `recording.create`, `member.add`, or `write` for any other write (refused only
 * while suspended).
 */
export type WriteAction =
  | "meeting.create"
  | "bot.create"
  | "recording.create"
  | "member.add"
  /** Any other write (update, delete, API key, ...): refused only while suspended. */
  | "write";

/**
 * What identity's `authenticate` can answer on any authenticated route (documented on each of
 * them; the suite's response check fails on a code missing here).
 */
export const AUTHENTICATION_CODES: readonly ErrorCode[] = [
  "MISSING_CREDENTIALS",
  "INVALID_AUTHORIZATION_HEADER",
  "INVALID_TOKEN",
  "TOKEN_EXPIRED",
  "TOKEN_NOT_YET_VALID",
  "INVALID_AUTHORIZED_PARTY",
  "SESSION_AUTH_NOT_CONFIGURED",
  "INVALID_API_KEY",
  "API_KEY_REVOKED",
  "API_KEY_EXPIRED",
  "USER_DELETED",
  "ORGANIZATION_DELETED",
  "NO_ACTIVE_ORGANIZATION",
  "TOO_MANY_REQUESTS",
  // Clerk's signing keys could not be loaded (CLERK_SECRET_KEY deployments).
  "SERVICE_UNAVAILABLE",
];

/**
 * What billing's write guard can answer for each action (`billing/access.ts`; PAYMENT_DISPUTED
 * only where DISPUTE_READ_ONLY is on: `billing/disputes.ts`).
 */
export const WRITE_GUARD_CODES: Record<WriteAction, readonly ErrorCode[]> = {
  "meeting.create": [
    "SUBSCRIPTION_SUSPENDED",
    "PAYMENT_DISPUTED",
    "PLAN_LIMIT_MEETINGS",
    "PLAN_LIMIT_STORAGE",
  ],
  "bot.create": [
    "SUBSCRIPTION_SUSPENDED",
    "PAYMENT_DISPUTED",
    "PLAN_LIMIT_MEETINGS",
    "PLAN_LIMIT_STORAGE",
  ],
  "recording.create": ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED", "PLAN_LIMIT_STORAGE"],
  "member.add": ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED", "PLAN_LIMIT_TEAM_MEMBERS"],
  write: ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED"],
};

/** The write guard's answer when the organization vanished between authentication and the check. */
export const WRITE_GUARD_GONE: ErrorCode = "NOT_FOUND";

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
 * 403 ADMIN_REQUIRED unless an admin user calls. API keys never pass: admin-only routes (key
 * management, ...) need a person's session, so a leaked key cannot mint or revoke keys.
 */
export function requireRole(role: "admin"): RequestHandler {
  return (req, _res, next) => {
    if (req.auth?.kind === "user" && req.auth.role === role) {
      next();
      return;
    }
    const isKey = req.auth?.kind === "apiKey";
    next(
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
  };
}

/**
 * 403 PLATFORM_ADMIN_REQUIRED unless a platform admin's session calls (`/api/v1/admin`). An
 * organization's admin is not one; an API key never is, whatever its scopes.
 */
export const requirePlatformAdmin: RequestHandler = (req, _res, next) => {
  if (req.auth?.kind === "user" && req.auth.isPlatformAdmin === true) {
    next();
    return;
  }
  const isKey = req.auth?.kind === "apiKey";
  next(
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
};
