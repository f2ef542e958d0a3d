/**
 * Identity: who is calling. Clerk sessions (verified without a network call), API keys (hashed,
 * scoped, cached, brute-force locked out), users, organizations and memberships from Clerk's
 * webhooks.
 */
export { createApiKeyLockout, type ApiKeyLockout, type ApiKeyLockoutHooks } from "./apiKeyAuth";
export { ApiKeyCache } from "./apiKeyCache";
export { API_KEY_FAMILY, API_KEY_PREFIX, createApiKey } from "./apiKeyService";
export {
  AUTHENTICATION_CODES,
  authenticate,
  describeSignInMethods,
  readSessionClaims,
  sessionVerification,
  type AuthenticateOptions,
  type SessionVerification,
} from "./authenticate";
export {
  bootstrapApiKey,
  OperatorInputError,
  parseScopes,
  type BootstrapApiKeyInput,
  type BootstrappedApiKey,
} from "./bootstrap";
export { API_KEY_MAX_LIFETIME_DAYS } from "./schemas";
export { createClerkAdmin, type ClerkAdmin } from "./clerkClient";
export { registerClerkHandlers, type ClerkHandlerDeps } from "./clerkWebhooks";
export { SEAT_RESERVATION_MS, type MemberDeps } from "./memberService";
export type { IdentityDeps } from "./deps";
export { identityRoutes } from "./routes";
export { createIdentityModule, type IdentityModule, type IdentityModuleDeps } from "./module";
