/** API key authentication and lockout under their original entry point (see `identity/`). */
export { authenticate, createApiKeyLockout, type ApiKeyLockout } from "../identity";
