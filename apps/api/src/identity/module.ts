import type { WriteGuards } from "../http/auth";
import type { RequestHandler } from "express";
import type { ViolationSettings } from "../billing";
import type { RouteDefinition } from "../http/route";
import type { RegisterWebhookHandlers } from "../webhooks";
import { createApiKeyLockout, type ApiKeyLockout, type ApiKeyLockoutHooks } from "./apiKeyAuth";
import { ApiKeyCache } from "./apiKeyCache";
import { authenticate } from "./authenticate";
import { createClerkAdmin, type ClerkAdmin } from "./clerkClient";
import { registerClerkHandlers, type ClerkHandlerDeps } from "./clerkWebhooks";
import type { IdentityDeps } from "./deps";
import type { MemberDeps } from "./memberService";
import { identityRoutes } from "./routes";

export interface IdentityModuleDeps extends IdentityDeps {
  /** Billing's guards of the write actions, with the codes they answer (routes declare them). */
  writeGuards: WriteGuards;
  /** Billing's violation rules: membership changes from Clerk re-check the seat limit. */
  violations: ViolationSettings;
  /** Default: Clerk's Backend API from CLERK_* (null without CLERK_SECRET_KEY). */
  clerk?: ClerkAdmin | null;
  /** Public key (PEM) of `pnpm dev:token`, trusted while Clerk is not configured. */
  devSessionPublicKey: string | null;
  /** Counts failed API keys and lockouts (the `/metrics` counters). */
  lockoutHooks: ApiKeyLockoutHooks;
  /** In the transaction of Clerk's `organization.deleted`: the other features' part of it. */
  onOrganizationDeleted?: ClerkHandlerDeps["onOrganizationDeleted"];
}

export interface IdentityModule {
  routes: RouteDefinition[];
  webhookHandlers: RegisterWebhookHandlers;
  hooks: {
    /** Who is calling: every declared route is mounted behind it. */
    authenticate: RequestHandler;
  };
  deps: {
    /** One cache of verified keys: the revoke route drops exactly the copies auth reads. */
    apiKeyCache: ApiKeyCache;
    /** One set of lockout counters per app. */
    lockout: ApiKeyLockout;
    /** Adding members at Clerk (`POST /api/v1/members`). */
    members: MemberDeps;
  };
}

/**
 * Identity as one app uses it: sign-in (sessions and API keys, with their cache and lockout),
 * its routes and Clerk's webhook handlers.
 */
export function createIdentityModule(deps: IdentityModuleDeps): IdentityModule {
  const { db, config, logger, clock, redis } = deps;
  const identityDeps: IdentityDeps = { db, config, logger, clock, redis };
  const apiKeyCache = new ApiKeyCache(identityDeps);
  const lockout = createApiKeyLockout(identityDeps, deps.lockoutHooks);
  const members: MemberDeps = {
    db,
    clock,
    logger,
    clerk: deps.clerk === undefined ? createClerkAdmin(config) : deps.clerk,
  };
  return {
    deps: { apiKeyCache, lockout, members },
    routes: identityRoutes({ db, clock, apiKeyCache, members }, deps.writeGuards),
    webhookHandlers: (registry) =>
      registerClerkHandlers(registry, {
        clock,
        violations: deps.violations,
        onOrganizationDeleted: deps.onOrganizationDeleted,
      }),
    hooks: {
      authenticate: authenticate(identityDeps, {
        apiKeyCache,
        lockout,
        devSessionPublicKey: deps.devSessionPublicKey,
      }),
    },
  };
}
