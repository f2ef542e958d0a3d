import { NotFoundError } from "@zigznote/shared";
import { Router } from "express";
import type { AppContext } from "../context";
import { bearerAuth, errorResponses, openApiRegistry, z } from "../openapi/registry";
import { ScopeSchema } from "./apiKeys.schemas";

export const MeSchema = z
  .object({
    kind: z.enum(["user", "apiKey"]),
    organization: z.object({ id: z.uuid(), name: z.string(), clerkId: z.string().nullable() }),
    user: z.object({ id: z.uuid(), clerkId: z.string(), email: z.string().nullable() }).nullable(),
    apiKey: z.object({ id: z.uuid(), name: z.string(), prefix: z.string() }).nullable(),
    role: z.enum(["admin", "member"]).nullable(),
    scopes: z.array(ScopeSchema),
  })
  .openapi("Me");

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/me",
  summary: "Who is calling: user or API key, organization, role and scopes",
  security: [{ [bearerAuth.name]: [] }],
  responses: {
    200: { description: "The caller", content: { "application/json": { schema: MeSchema } } },
    ...errorResponses(401, 403, 429),
  },
});

export function createMeRouter(ctx: AppContext): Router {
  const router = Router();
  router.get("/", async (req, res) => {
    const { auth } = req;
    const [organization, user, apiKey] = await Promise.all([
      ctx.db.organization.findUnique({
        where: { id: auth.organizationId },
        select: { id: true, name: true, clerkId: true },
      }),
      auth.userId
        ? ctx.db.user.findUnique({
            where: { id: auth.userId },
            select: { id: true, clerkId: true, email: true },
          })
        : null,
      auth.apiKeyId
        ? ctx.db.apiKey.findUnique({
            where: { id: auth.apiKeyId },
            select: { id: true, name: true, prefix: true },
          })
        : null,
    ]);
    if (!organization) throw new NotFoundError("Organization not found");
    res.json({
      kind: auth.kind,
      organization,
      user,
      apiKey,
      role: auth.role,
      scopes: auth.scopes,
    });
  });
  return router;
}
