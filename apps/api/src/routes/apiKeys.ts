import { Router } from "express";
import type { AppContext } from "../context";
import type { ApiKeyCache } from "../lib/apiKeyCache";
import { requireRole } from "../middleware/auth";
import { requireWriteAccess } from "../middleware/billingGuard";
import { validate, validated } from "../middleware/validate";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import { createApiKey, listApiKeys, revokeApiKey } from "../services/apiKeyService";
import {
  ApiKeyIdParams,
  ApiKeyListSchema,
  ApiKeySchema,
  CreateApiKeyBody,
  CreatedApiKeySchema,
} from "./apiKeys.schemas";

const security = [{ [bearerAuth.name]: [] }];

openApiRegistry.registerPath({
  method: "post",
  path: "/api/v1/api-keys",
  summary: "Create an API key (admins; the full key is returned once)",
  security,
  request: { body: { content: { "application/json": { schema: CreateApiKeyBody } } } },
  responses: {
    201: {
      description: "Created",
      content: { "application/json": { schema: CreatedApiKeySchema } },
    },
    ...errorResponses(400, 401, 402, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/api-keys",
  summary: "List the organization's API keys (admins; never the secret)",
  security,
  responses: {
    200: { description: "Keys", content: { "application/json": { schema: ApiKeyListSchema } } },
    ...errorResponses(401, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "delete",
  path: "/api/v1/api-keys/{id}",
  summary: "Revoke an API key (admins; effective on the next request)",
  security,
  request: { params: ApiKeyIdParams },
  responses: {
    200: { description: "Revoked", content: { "application/json": { schema: ApiKeySchema } } },
    ...errorResponses(400, 401, 403, 404, 429),
  },
});

/** Key management: admins only, and only with a session (a key cannot mint or revoke keys). */
export function createApiKeysRouter(ctx: AppContext, apiKeyCache: ApiKeyCache): Router {
  const router = Router();
  router.use(requireRole("admin"));

  // Creating a key is a write (402 while suspended); revoking one never is refused.
  router.post(
    "/",
    requireWriteAccess(ctx, "write"),
    validate({ body: CreateApiKeyBody }),
    async (req, res) => {
      const body = validated(req, "body", CreateApiKeyBody);
      const { apiKey, plainKey } = await createApiKey(ctx.db, {
        organizationId: req.auth.organizationId,
        createdById: req.auth.userId,
        name: body.name,
        scopes: body.scopes,
        expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
      });
      res.status(201).json({ ...apiKey, key: plainKey });
    },
  );

  router.get("/", async (req, res) => {
    res.json({ data: await listApiKeys(ctx.db, req.auth.organizationId) });
  });

  router.delete("/:id", validate({ params: ApiKeyIdParams }), async (req, res) => {
    const { id } = validated(req, "params", ApiKeyIdParams);
    const revoked = await revokeApiKey(ctx.db, {
      organizationId: req.auth.organizationId,
      id,
      now: ctx.clock.now(),
    });
    await apiKeyCache.invalidate(revoked.prefix);
    res.json(revoked);
  });

  return router;
}
