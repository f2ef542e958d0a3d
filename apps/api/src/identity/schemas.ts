import { ValidationError } from "@zigznote/shared";
import { z } from "../http/openapi";
import { SCOPES } from "../http/scopes";
import { DAY_MS } from "../lib/time";

/** The longest an API key may be made to live: two years. Keys without an expiry never expire. */
export const API_KEY_MAX_LIFETIME_DAYS = 730;

/**
 * A key's expiry must be after `now` (a key created expired is a mistake, not a key) and at most
 * API_KEY_MAX_LIFETIME_DAYS later. `now` is the app's clock, the one authentication compares to.
 */
export function checkApiKeyExpiry(expiresAt: Date, now: Date): void {
  const latest = now.getTime() + API_KEY_MAX_LIFETIME_DAYS * DAY_MS;
  const message =
    expiresAt.getTime() <= now.getTime()
      ? "expiresAt must be in the future"
      : expiresAt.getTime() > latest
        ? `expiresAt must be at most ${API_KEY_MAX_LIFETIME_DAYS} days from now`
        : undefined;
  if (message) {
    throw new ValidationError(message, {
      fields: [{ path: "expiresAt", message, code: "invalid_expiry" }],
    });
  }
}

export const ScopeSchema = z.enum(SCOPES).openapi("Scope");

export const CreateApiKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(ScopeSchema).min(1).max(SCOPES.length),
    expiresAt: z.iso
      .datetime({ offset: true })
      .optional()
      .openapi({
        description: `When the key stops working: in the future, at most ${API_KEY_MAX_LIFETIME_DAYS} days from now; never when omitted`,
      }),
  })
  .strict()
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

export const AddMemberBody = z
  .object({
    userId: z
      .string()
      .regex(/^user_[A-Za-z0-9]{1,64}$/, "must be a Clerk user id (user_...)")
      .openapi({ description: "Clerk's id of the user to add", example: "user_2abcDEF" }),
    role: z.enum(["admin", "member"]).default("member"),
  })
  .strict()
  .openapi("AddMemberRequest");

export const MemberSchema = z
  .object({
    id: z.uuid().openapi({ description: "The membership's id" }),
    organizationId: z.uuid(),
    userId: z.uuid().openapi({ description: "Our id of the user" }),
    clerkUserId: z.string(),
    clerkMembershipId: z.string(),
    role: z.enum(["admin", "member"]),
  })
  .openapi("Member");
