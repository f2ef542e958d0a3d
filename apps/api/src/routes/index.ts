import { Router, type RequestHandler } from "express";
import type { AppContext } from "../context";
import { ApiKeyCache } from "../lib/apiKeyCache";
import { authenticate } from "../middleware/auth";
import { createApiKeysRouter } from "./apiKeys";
import { createBillingRouter } from "./billing";
import { createMeRouter } from "./me";
import { createOrganizationRouter } from "./organization";
import { createMeetingsRouter } from "./meetings";

export interface ApiRouterOptions {
  /**
   * Replaces `authenticate(ctx)`. For benchmarks that measure what authentication costs
   * against the same routes; the server never sets it.
   */
  authenticate?: RequestHandler;
}

/**
 * The versioned API under `/api/v1`. Each resource has its own router file; mount it here.
 * Every resource is mounted behind `auth` (one instance, so one set of lockout counters):
 * `req.auth` names the organization the request acts for. Unknown paths stay a plain 404.
 */
export function createApiRouter(ctx: AppContext, options: ApiRouterOptions = {}): Router {
  const router = Router();
  // One cache of verified keys: the revoke route must drop exactly the copies auth reads.
  const apiKeyCache = new ApiKeyCache(ctx);
  const auth = options.authenticate ?? authenticate(ctx, { apiKeyCache });
  router.use("/me", auth, createMeRouter(ctx));
  router.use("/api-keys", auth, createApiKeysRouter(ctx, apiKeyCache));
  router.use("/billing", auth, createBillingRouter(ctx));
  router.use("/organization", auth, createOrganizationRouter(ctx));
  router.use("/meetings", auth, createMeetingsRouter(ctx));
  return router;
}
