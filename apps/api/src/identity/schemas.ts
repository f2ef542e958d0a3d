import { z } from "../http/openapi";
import { SCOPES } from "../http/scopes";

export const ScopeSchema = z.enum(SCOPES).openapi("Scope");

export const CreateApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(ScopeSchema).min(1).max(SCOPES.length),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({ description: "When the key stops working; never when omitted" }),
  })
  .openapi("CreateApiKeyRequest");

export const ApiKeyIdParams = z.object({ id: z.uuid() });

export const ApiKeySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    prefix: z.string().openapi({ description: "Public key id, shown in the key after zn_live_" }),
    scopes: z.array(ScopeSchema),
    createdById: z.uuid().nullable(),
    createdAt: z.iso.datetime(),
    lastUsedAt: z.iso.datetime().nullable(),
    expiresAt: z.iso.datetime().nullable(),
    revokedAt: z.iso.datetime().nullable(),
  })
  .openapi("ApiKey");

export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().openapi({
    description: "The full key. Shown once: only a hash of its secret is stored.",
    example: "zn_live_AbCdEfGhIjKl_...",
  }),
}).openapi("CreatedApiKey");

export const ApiKeyListSchema = z.object({ data: z.array(ApiKeySchema) }).openapi("ApiKeyList");
