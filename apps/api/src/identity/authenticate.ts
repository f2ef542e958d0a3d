/* eslint-disable max-lines -- the one authentication path (Clerk session, development token, API key with lockout) as a single reviewed sequence; its branches share the refusal and logging rules */
import { verifyToken } from "@clerk/backend";
import { TokenVerificationErrorReason } from "@clerk/backend/errors";
import type { Role } from "@zigznote/database";
import {
  ForbiddenError,
  isAppError,
  ServiceUnavailableError,
  UnauthorizedError,
  type AppError,
  type ErrorCode,
} from "@zigznote/shared";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Config } from "../config";
import { DEV_TOKEN_COMMAND } from "../lib/devSessionKey";
import type { IdentityDeps } from "./deps";
import type { ApiKeyCache } from "./apiKeyCache";
import type { AuthContext } from "../http/auth";
import { toStorableText } from "../lib/text";
import { scopesForRole } from "../http/scopes";
import { API_KEY_FAMILY } from "./apiKeyService";
import { mapClerkRole, upsertMembership, upsertOrganization, upsertUser } from "./identityService";
import { createApiKeyAuthenticator, type ApiKeyLockout } from "./apiKeyAuth";
import { transaction } from "../lib/afterCommit";
import {
  findMembershipByClerkIds,
  lockOrganizationShared,
  wasMembershipRemovedSince,
} from "./store";

/**
 * What `authenticate` can answer on any authenticated route: the app hands them to the route
 * kernel's document (`RouteDocumentation`), so each authenticated operation lists them (the
 * suite's response check fails on a code missing here).
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
  "SESSION_PENDING",
  "ORGANIZATION_DELETED",
  "NO_ACTIVE_ORGANIZATION",
  "MEMBERSHIP_REMOVED",
  "TOO_MANY_REQUESTS",
  // Clerk's signing keys could not be loaded (CLERK_SECRET_KEY deployments).
  "SERVICE_UNAVAILABLE",
];

/** The claims we read from a Clerk session token, in either of Clerk's layouts. */
export interface SessionClaims {
  userId: string;
  organizationId: string | null;
  /** Clerk's role key, `org:` prefixed (`org:admin`, `org:member`, custom `org:...`). */
  organizationRole: string | null;
  organizationSlug: string | null;
  issuedAt: Date;
  /** The platform-admin claim (see `hasPlatformAdminClaim`). */
  isPlatformAdmin: boolean;
  /**
   * Who the user is, when the session-token template adds it (README: `email`, `first_name`,
   * `last_name`, `username`); null where it does not. Only used to create a user met first
   * through a token: Clerk's user webhooks stay the source of these fields.
   */
  profile: {
    email: string | null;
    firstName: string | null;
    lastName: string | null;
    username: string | null;
  };
}

function stringClaim(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 ? value : null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The platform-admin claim, from a Clerk session-token template (README): either a top-level
 * `platform_admin: true` (`"{{user.public_metadata.platformAdmin}}"`) or the user's public
 * metadata under `metadata` / `public_metadata` (`"{{user.public_metadata}}"`) holding
 * `platformAdmin: true`. Only the boolean true counts.
 */
export function hasPlatformAdminClaim(payload: Record<string, unknown>): boolean {
  if (payload.platform_admin === true) return true;
  return [payload.metadata, payload.public_metadata].some(
    (metadata) => isObject(metadata) && metadata.platformAdmin === true,
  );
}

/**
 * Reads user and active organization from a verified payload. Session token v1 has flat
 * `org_id` / `org_role` / `org_slug`; v2 has `o: { id, rol, slg }` with the role unprefixed.
 */
export function readSessionClaims(payload: Record<string, unknown>): SessionClaims {
  const compact = (typeof payload.o === "object" && payload.o !== null ? payload.o : {}) as Record<
    string,
    unknown
  >;
  const compactRole = stringClaim(compact.rol);
  const iat = typeof payload.iat === "number" ? payload.iat : Math.floor(Date.now() / 1000);
  return {
    userId: String(payload.sub),
    organizationId: stringClaim(payload.org_id) ?? stringClaim(compact.id),
    organizationRole:
      stringClaim(payload.org_role) ??
      (compactRole ? (compactRole.startsWith("org:") ? compactRole : `org:${compactRole}`) : null),
    organizationSlug: stringClaim(payload.org_slug) ?? stringClaim(compact.slg),
    issuedAt: new Date(iat * 1000),
    isPlatformAdmin: hasPlatformAdminClaim(payload),
    profile: {
      email: stringClaim(payload.email),
      firstName: stringClaim(payload.first_name),
      lastName: stringClaim(payload.last_name),
      username: stringClaim(payload.username),
    },
  };
}

function tokenError(error: unknown): AppError {
  // Read by shape: the SDK's entry points bundle their own copies of the error class.
  const reason =
    typeof error === "object" && error !== null
      ? (error as { reason?: unknown }).reason
      : undefined;
  switch (reason) {
    case TokenVerificationErrorReason.TokenExpired:
      return new UnauthorizedError("The session token has expired", { code: "TOKEN_EXPIRED" });
    case TokenVerificationErrorReason.TokenNotActiveYet:
    case TokenVerificationErrorReason.TokenIatInTheFuture:
      return new UnauthorizedError("The session token is not valid yet", {
        code: "TOKEN_NOT_YET_VALID",
      });
    case TokenVerificationErrorReason.TokenInvalidAuthorizedParties:
      return new UnauthorizedError("The session token was issued for another application", {
        code: "INVALID_AUTHORIZED_PARTY",
      });
    case TokenVerificationErrorReason.RemoteJWKFailedToLoad:
    case TokenVerificationErrorReason.RemoteJWKInvalid:
      return new ServiceUnavailableError("Could not load Clerk's signing keys", {
        retryAfterSeconds: 5,
      });
    default:
      return new UnauthorizedError("The session token is invalid", { code: "INVALID_TOKEN" });
  }
}

/** Which key verifies session tokens: one answer for `authenticate` and the start-up log. */
export type SessionVerification =
  | { source: "CLERK_JWT_KEY"; jwtKey: string }
  | { source: "CLERK_SECRET_KEY"; secretKey: string }
  | { source: "dev:token"; jwtKey: string }
  | { source: "none" };

/**
 * Clerk's key when configured; else the development key (lib/devSessionKey.ts) when the server
 * trusts one, never in production; else none.
 */
export function sessionVerification(
  config: Config,
  devSessionPublicKey: string | null,
): SessionVerification {
  if (config.CLERK_JWT_KEY) return { source: "CLERK_JWT_KEY", jwtKey: config.CLERK_JWT_KEY };
  if (config.CLERK_SECRET_KEY) {
    return { source: "CLERK_SECRET_KEY", secretKey: config.CLERK_SECRET_KEY };
  }
  if (devSessionPublicKey && config.NODE_ENV !== "production") {
    return { source: "dev:token", jwtKey: devSessionPublicKey };
  }
  return { source: "none" };
}

/**
 * One start-up line saying how callers can sign in. `devKeyRefusal`: why the development key is
 * not trusted, shown when nothing else verifies session tokens.
 */
export function describeSignInMethods(
  config: Config,
  devSessionPublicKey: string | null,
  devKeyRefusal: string | null,
): string {
  switch (sessionVerification(config, devSessionPublicKey).source) {
    case "CLERK_JWT_KEY":
      return "sign-in: Clerk session tokens (verified with CLERK_JWT_KEY) and API keys";
    case "CLERK_SECRET_KEY":
      return (
        "sign-in: Clerk session tokens (keys fetched from Clerk with CLERK_SECRET_KEY) " +
        "and API keys"
      );
    case "dev:token":
      return (
        `sign-in: development session tokens from \`${DEV_TOKEN_COMMAND}\` ` +
        `(key ${config.DEV_SESSION_KEY_FILE}; trusted because Clerk is not configured, ` +
        "the database is embedded and NODE_ENV is not production) and API keys"
      );
    case "none":
      return (
        "sign-in: API keys only; session tokens are refused until CLERK_JWT_KEY or " +
        "CLERK_SECRET_KEY is set" +
        (devKeyRefusal ? ` (dev:token is not trusted: ${devKeyRefusal})` : "")
      );
  }
}

function notConfiguredError(config: Config): AppError {
  const isProduction = config.NODE_ENV === "production";
  return new UnauthorizedError(
    "Session tokens are not accepted: this server has neither CLERK_JWT_KEY (Clerk's PEM public " +
      "key) nor CLERK_SECRET_KEY set" +
      (isProduction
        ? "."
        : ". For local development on the embedded database (no DATABASE_URL), " +
          `\`${DEV_TOKEN_COMMAND}\` prints a token this server accepts.`),
    {
      code: "SESSION_AUTH_NOT_CONFIGURED",
      details: {
        settings: ["CLERK_JWT_KEY", "CLERK_SECRET_KEY"],
        ...(isProduction ? {} : { devToken: DEV_TOKEN_COMMAND }),
      },
    },
  );
}

/** Clerk's reason code and message, without anything of the token itself. */
function rejectionReason(error: unknown, token: string): { reason: string; detail?: string } {
  const { reason, message } = (typeof error === "object" && error !== null ? error : {}) as {
    reason?: unknown;
    message?: unknown;
  };
  const detail = typeof message === "string" ? message : undefined;
  const echoesToken = token.split(".").some((part) => part.length >= 8 && detail?.includes(part));
  return {
    reason: typeof reason === "string" ? reason : "unexpected-error",
    ...(detail && !echoesToken ? { detail } : {}),
  };
}

/** Verifies a Clerk session JWT and returns the local organization/user it stands for. */
function createSessionAuthenticator(
  ctx: IdentityDeps,
  devSessionPublicKey: string | null,
): (token: string, requestId: string) => Promise<AuthContext> {
  const { config } = ctx;
  const verification = sessionVerification(config, devSessionPublicKey);
  // Why a token was refused, for whoever runs the server; never the token.
  const logRejection = (requestId: string, rejection: { reason: string; detail?: string }) =>
    ctx.logger.info(
      { requestId, sessionKey: verification.source, ...rejection },
      `session token rejected: ${rejection.reason}`,
    );
  return async (token, requestId) => {
    if (verification.source === "none") {
      logRejection(requestId, { reason: "session-auth-not-configured" });
      throw notConfiguredError(config);
    }
    let payload: Record<string, unknown>;
    try {
      // With a PEM key no network call is made; the secret key fetches (and caches) JWKS.
      payload = await verifyToken(token, {
        ...(verification.source === "CLERK_SECRET_KEY"
          ? { secretKey: verification.secretKey, apiUrl: config.CLERK_API_URL }
          : { jwtKey: verification.jwtKey }),
        authorizedParties:
          config.CLERK_AUTHORIZED_PARTIES.length > 0
            ? [...config.CLERK_AUTHORIZED_PARTIES]
            : undefined,
      });
    } catch (error) {
      logRejection(requestId, rejectionReason(error, token));
      throw tokenError(error);
    }
    // Session token v2 says whether the session is usable (`sts`): a pending one still has tasks
    // (choose an organization, reset a compromised password, ...). Clerk's own SDKs treat it as
    // signed out; so do we. v1 tokens have no `sts`.
    if (payload.sts !== undefined && payload.sts !== "active") {
      logRejection(requestId, {
        reason: "session-pending",
        detail: `session status ${typeof payload.sts === "string" ? payload.sts.slice(0, 32) : typeof payload.sts}`,
      });
      throw new UnauthorizedError(
        "This session has tasks to finish in Clerk before it can be used (status pending)",
        { code: "SESSION_PENDING" },
      );
    }
    // Signed by Clerk: made storable rather than refused (see lib/text.ts).
    const claims = readSessionClaims(toStorableText(payload));
    const isPlatformAdmin =
      claims.isPlatformAdmin || config.PLATFORM_ADMIN_USER_IDS.includes(claims.userId);
    // A platform admin needs no organization for the console (`auth: "withoutOrganization"`
    // routes); the routes that act within one refuse the context (`requireOrganization`).
    if (!claims.organizationId && isPlatformAdmin) {
      return {
        kind: "user",
        organizationId: null,
        userId: await resolveUser(ctx, claims),
        apiKeyId: null,
        role: null,
        scopes: [],
        isPlatformAdmin,
        planSlug: null,
      };
    }
    if (!claims.organizationId) {
      logRejection(requestId, {
        reason: "missing-claim",
        detail: "no active organization (claim o.id or org_id)",
      });
      throw new ForbiddenError("Select an organization: this session has no active organization", {
        code: "NO_ACTIVE_ORGANIZATION",
      });
    }
    const { userId, organizationId, planSlug, role } = await resolveMembership(
      ctx,
      { ...claims, organizationId: claims.organizationId },
      mapClerkRole(claims.organizationRole),
    );
    return {
      kind: "user",
      organizationId,
      userId,
      apiKeyId: null,
      role,
      scopes: scopesForRole(role),
      isPlatformAdmin,
      planSlug,
    };
  };
}

/**
 * The local ids of the token's user and organization. Known callers cost one read; the first
 * request of an unknown user or organization creates the rows with insert-or-keep statements,
 * so concurrent first requests converge on one row each, and webhook data is never overwritten.
 * The role is the token's (`tokenRole`, Clerk's truth when the token was issued) unless a Clerk
 * event at or after the token's issue time set the local copy: a role changed since (an admin
 * demoted a moment ago) is the membership's, not the older token's.
 */
async function resolveMembership(
  ctx: IdentityDeps,
  claims: SessionClaims & { organizationId: string },
  tokenRole: Role,
): Promise<{ userId: string; organizationId: string; planSlug: string; role: Role }> {
  const existing = await findMembershipByClerkIds(ctx.db, {
    userClerkId: claims.userId,
    organizationClerkId: claims.organizationId,
  });
  if (existing) {
    assertActive(existing.userDeletedAt, existing.organizationDeletedAt);
    const changedSinceToken =
      existing.clerkUpdatedAt !== null && existing.clerkUpdatedAt >= claims.issuedAt;
    return {
      userId: existing.userId,
      organizationId: existing.organizationId,
      planSlug: existing.planSlug,
      role: changedSinceToken ? existing.role : tokenRole,
    };
  }
  const user = await upsertUser(ctx, {
    clerkId: claims.userId,
    ...claims.profile,
    updatedAt: claims.issuedAt,
    onlyIfMissing: true,
  });
  const organization = await upsertOrganization(ctx, {
    clerkId: claims.organizationId,
    name: claims.organizationSlug ?? claims.organizationId,
    updatedAt: claims.issuedAt,
    onlyIfMissing: true,
  });
  assertActive(user.deletedAt, organization.deletedAt);
  // Clerk removed the user from the organization after this token was issued (its claims are
  // older than the removal): the token no longer speaks for the membership, and provisioning
  // it would bring the removed member back for good. Checked under a share lock of the
  // organization, which a removal locks for update first, so a removal committing meanwhile is
  // seen (or waits for the membership and deletes it).
  const provisioned = await transaction(ctx.db, async (tx) => {
    await lockOrganizationShared(tx, organization.id);
    const removed = await wasMembershipRemovedSince(tx, {
      userClerkId: claims.userId,
      organizationClerkId: claims.organizationId,
      since: claims.issuedAt,
    });
    if (removed) return false;
    await upsertMembership(
      { db: tx },
      {
        organizationId: organization.id,
        userId: user.id,
        role: tokenRole,
        updatedAt: claims.issuedAt,
        onlyIfMissing: true,
      },
    );
    return true;
  });
  if (!provisioned) {
    throw new ForbiddenError(
      "You were removed from this organization after this session token was issued: refresh the session",
      { code: "MEMBERSHIP_REMOVED" },
    );
  }
  return {
    userId: user.id,
    organizationId: organization.id,
    planSlug: organization.planSlug,
    role: tokenRole,
  };
}

/** The local id of the token's user (created on its first request, like `resolveMembership`). */
async function resolveUser(ctx: IdentityDeps, claims: SessionClaims): Promise<string> {
  const user = await upsertUser(ctx, {
    clerkId: claims.userId,
    ...claims.profile,
    updatedAt: claims.issuedAt,
    onlyIfMissing: true,
  });
  assertActive(user.deletedAt, null);
  return user.id;
}

function assertActive(userDeletedAt: Date | null, organizationDeletedAt: Date | null): void {
  if (userDeletedAt) throw new UnauthorizedError("This user was deleted", { code: "USER_DELETED" });
  if (organizationDeletedAt) {
    throw new ForbiddenError("This organization was deleted", { code: "ORGANIZATION_DELETED" });
  }
}

export interface AuthenticateOptions {
  /** Shared lockout counters (tests and benchmarks inspect them); one per app by default. */
  lockout?: ApiKeyLockout;
  /** The cache of verified keys; share it with whatever revokes keys (routes/apiKeys). */
  apiKeyCache?: ApiKeyCache;
  /** Public key (PEM) of `pnpm dev:token`; used only while Clerk is not configured. */
  devSessionPublicKey?: string | null;
}

/** Clerk's session cookie (what its own `authenticateRequest` reads besides the header). */
export const SESSION_COOKIE = "__session";

/** The value of cookie `name` in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const separator = part.indexOf("=");
    if (separator < 0 || part.slice(0, separator).trim() !== name) continue;
    const value = part.slice(separator + 1).trim();
    try {
      return decodeURIComponent(value) || null;
    } catch {
      return value || null;
    }
  }
  return null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * CSRF: a browser sends the cookie with any request to this host, whoever made the page. A
 * cookie-authenticated write is accepted only from a page of an allowed origin: the API's own
 * (the console is served at /admin) or one in ADMIN_ALLOWED_ORIGINS. Header-authenticated
 * requests need no check (a browser never adds that header by itself).
 */
function assertCookieWriteOrigin(req: Request, config: Config): void {
  if (SAFE_METHODS.has(req.method)) return;
  const origin = req.get("origin") ?? null;
  // The API's own origin as the browser addressed it: scheme and host both from what a proxy
  // trusted by TRUST_PROXY forwards (X-Forwarded-Proto, X-Forwarded-Host: `req.protocol` and
  // `req.host`), else from the request itself. The raw Host header would be the proxy's upstream
  // address behind one that rewrites it (nginx's default), refusing the console's own writes.
  // A cross-site page cannot forge either header: custom headers need a CORS preflight, which
  // only ADMIN_ALLOWED_ORIGINS pass.
  const ownOrigin = `${req.protocol}://${req.host ?? ""}`;
  if (origin !== null && (origin === ownOrigin || config.ADMIN_ALLOWED_ORIGINS.includes(origin))) {
    return;
  }
  throw new ForbiddenError(
    origin === null
      ? "A write authenticated by the session cookie must carry an Origin header"
      : "A write authenticated by the session cookie must come from an allowed origin",
    { code: "CSRF_ORIGIN_REFUSED", details: { origin } },
  );
}

/**
 * Authenticates `/api/v1` requests from `Authorization: Bearer <token>`, or else from Clerk's
 * `__session` cookie (a session token only; writes then need an allowed Origin: see
 * `assertCookieWriteOrigin`). A token in the API key family (`zn_...`) goes through the key
 * check under brute-force protection, anything else is a Clerk session JWT. Sets `req.auth`;
 * 401 for missing/invalid credentials, 403 without an active organization or for a refused
 * origin, 429 while locked out.
 */
export function authenticate(ctx: IdentityDeps, options: AuthenticateOptions = {}): RequestHandler {
  const authenticateApiKey = createApiKeyAuthenticator(ctx, options);
  const authenticateSession = createSessionAuthenticator(ctx, options.devSessionPublicKey ?? null);
  const authenticateRequest = async (req: Request): Promise<void> => {
    const header = req.get("authorization");
    if (!header) {
      const cookieToken = readCookie(req.get("cookie"), SESSION_COOKIE);
      if (cookieToken) {
        assertCookieWriteOrigin(req, ctx.config);
        if (cookieToken.startsWith(API_KEY_FAMILY)) {
          throw new UnauthorizedError("API keys are sent in the Authorization header only", {
            code: "INVALID_TOKEN",
          });
        }
        req.auth = { ...(await authenticateSession(cookieToken, req.requestId)), via: "cookie" };
        return;
      }
      throw new UnauthorizedError("Send Authorization: Bearer <token>", {
        code: "MISSING_CREDENTIALS",
      });
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      throw new UnauthorizedError("The Authorization header must be `Bearer <token>`", {
        code: "INVALID_AUTHORIZATION_HEADER",
      });
    }
    const token = match[1];
    req.auth = token.startsWith(API_KEY_FAMILY)
      ? await authenticateApiKey(token, req.ip, req.onCallerKnown)
      : await authenticateSession(token, req.requestId);
  };
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      await authenticateRequest(req);
    } catch (error) {
      // Every refusal of credentials says how to authenticate (RFC 9110 11.6.1, RFC 6750 3). The
      // challenge goes with the 401, not on the response: when the address's request budget
      // answers 429 instead (http/rateLimit.ts), the client is told to wait, not to authenticate.
      if (isAppError(error) && error.status === 401) {
        throw UnauthorizedError.withChallenge(
          error,
          authenticationChallenge(req.get("authorization")),
        );
      }
      throw error;
    }
    next();
  };
}

/**
 * The challenge of a 401: a Bearer token is what the API takes; `invalid_token` when the request
 * sent an Authorization header that was refused, no error code when it sent none.
 */
function authenticationChallenge(authorization: string | undefined): string {
  return authorization === undefined
    ? 'Bearer realm="zigznote"'
    : 'Bearer realm="zigznote", error="invalid_token"';
}
