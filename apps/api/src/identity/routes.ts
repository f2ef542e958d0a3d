import type { WriteGuards } from "../http/auth";
import { z } from "../http/openapi";
import { defineRoute, type RouteDefinition } from "../http/route";
import { commitWith } from "../lib/transactionHooks";
import type { ApiKeyCache } from "./apiKeyCache";
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeyView } from "./apiKeyService";
import type { IdentityDeps } from "./deps";
import { getCallerRows } from "./identityService";
import { addMember, type MemberDeps } from "./memberService";
import {
  AddMemberBody,
  ApiKeyIdParams,
  ApiKeyListSchema,
  ApiKeySchema,
  checkApiKeyExpiry,
  CreateApiKeyBody,
  CreatedApiKeySchema,
  MemberSchema,
  ScopeSchema,
} from "./schemas";

export const MeSchema = z
  .object({
    kind: z.enum(["user", "apiKey"]),
    organization: z.object({ id: z.uuid(), name: z.string(), clerkId: z.string().nullable() }),
    user: z.object({ id: z.uuid(), clerkId: z.string(), email: z.string().nullable() }).nullable(),
    apiKey: z.object({ id: z.uuid(), name: z.string(), prefix: z.string() }).nullable(),
    role: z.enum(["admin", "member"]).nullable(),
    scopes: z.array(ScopeSchema),
    isPlatformAdmin: z.boolean().openapi({
      description:
        "An operator of zigznote (PLATFORM_ADMIN_USER_IDS or the platform-admin session claim): " +
        "may use /api/v1/admin and the console at /admin. Never true for an API key.",
    }),
  })
  .openapi("Me");

/**
 * `/api/v1/me` (who is calling), `/api/v1/api-keys` (key management: admins only, and only
 * with a session, so a key cannot mint or revoke keys) and `/api/v1/members` (adding a member
 * at Clerk, within the plan: admins' sessions only, like keys).
 */
export function identityRoutes(
  deps: Pick<IdentityDeps, "db" | "clock"> & { apiKeyCache: ApiKeyCache; members: MemberDeps },
  writeGuards: WriteGuards,
): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/api/v1/me",
      operationId: "getMe",
      tag: "Identity",
      summary: "Who is calling: user or API key, organization, role, scopes, platform admin or not",
      responses: { 200: { description: "The caller", schema: MeSchema } },
      errors: ["NOT_FOUND"],
      async handler({ auth }) {
        const { organization, user, apiKey } = await getCallerRows(deps, {
          organizationId: auth.organizationId,
          userId: auth.userId,
          apiKeyId: auth.apiKeyId,
        });
        return {
          status: 200,
          body: {
            kind: auth.kind,
            organization,
            user,
            apiKey,
            role: auth.role,
            scopes: auth.scopes,
            isPlatformAdmin: auth.kind === "user" && auth.isPlatformAdmin === true,
          },
        };
      },
    }),

    // Creating a key is a write (402 while suspended); revoking one never is refused.
    defineRoute({
      method: "post",
      path: "/api/v1/api-keys",
      operationId: "createApiKey",
      tag: "API keys",
      summary: "Create an API key (admins; the full key is returned once)",
      role: "admin",
      write: writeGuards["write"],
      body: CreateApiKeyBody,
      responses: { 201: { description: "Created", schema: CreatedApiKeySchema } },
      async handler({ body, auth, idempotency }) {
        const expiresAt = body.expiresAt ? new Date(body.expiresAt) : null;
        if (expiresAt) checkApiKeyExpiry(expiresAt, deps.clock.now());
        // A replay returns the key again: the stored answer is encrypted with a key derived from
        // the Idempotency-Key, which only the caller holds (http/idempotency.ts).
        const created = ({ apiKey, plainKey }: { apiKey: ApiKeyView; plainKey: string }) => ({
          status: 201 as const,
          body: { ...apiKey, key: plainKey },
        });
        const result = await commitWith(deps.db, idempotency.recordInTransaction(created), (db) =>
          createApiKey(
            { db },
            {
              organizationId: auth.organizationId,
              createdById: auth.userId,
              name: body.name,
              scopes: body.scopes,
              expiresAt,
            },
          ),
        );
        return created(result);
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/members",
      operationId: "addMember",
      tag: "Members",
      summary: "Add a Clerk user to the organization (admins; within the plan's member limit)",
      description:
        "Clerk keeps the organization's memberships: this asks Clerk to add the user. A seat is " +
        "reserved first, under the organization's lock, so concurrent adds never pass the plan's " +
        "limit. When Clerk does not answer (`CLERK_UNAVAILABLE`) the seat stays reserved for " +
        "10 minutes, or until Clerk's webhook brings the membership; retrying the same user " +
        "reuses it. Members added in Clerk's own dashboard cannot be refused: over the limit " +
        "they are recorded as a `team_members` violation and the admins are told.",
      role: "admin",
      write: writeGuards["member.add"],
      body: AddMemberBody,
      responses: { 201: { description: "Added at Clerk and recorded", schema: MemberSchema } },
      errors: [
        "NOT_FOUND",
        "ALREADY_MEMBER",
        "ORGANIZATION_NOT_IN_CLERK",
        "CLERK_USER_NOT_FOUND",
        "CLERK_REJECTED",
        "CLERK_UNAVAILABLE",
        "CONFLICT",
        "PROVIDER_NOT_CONFIGURED",
      ],
      async handler({ body, auth }) {
        const member = await addMember(deps.members, {
          organizationId: auth.organizationId,
          clerkUserId: body.userId,
          role: body.role,
        });
        return { status: 201, body: member };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/api-keys",
      operationId: "listApiKeys",
      tag: "API keys",
      summary: "List the organization's API keys (admins; never the secret)",
      role: "admin",
      responses: { 200: { description: "Keys", schema: ApiKeyListSchema } },
      async handler({ auth }) {
        return {
          status: 200,
          body: { data: await listApiKeys(deps, { organizationId: auth.organizationId }) },
        };
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/api-keys/:id",
      operationId: "revokeApiKey",
      tag: "API keys",
      summary: "Revoke an API key (admins; effective on the next request)",
      role: "admin",
      params: ApiKeyIdParams,
      responses: { 200: { description: "Revoked", schema: ApiKeySchema } },
      errors: ["NOT_FOUND"],
      async handler({ params, auth }) {
        return {
          status: 200,
          body: await revokeApiKey(deps, { organizationId: auth.organizationId, id: params.id }),
        };
      },
    }),
  ];
}
