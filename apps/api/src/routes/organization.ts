import { Router } from "express";
import { getOrganizationOverview } from "../billing/BillingService";
import type { AppContext } from "../context";
import { requireScope } from "../middleware/auth";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import { OrganizationOverviewSchema } from "./billing.schemas";

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/organization",
  summary: "The organization: plan, subscription status, usage against limits, violations",
  description: "Needs billing:read. Works while the subscription is suspended.",
  security: [{ [bearerAuth.name]: [] }],
  responses: {
    200: {
      description: "The caller's organization",
      content: { "application/json": { schema: OrganizationOverviewSchema } },
    },
    ...errorResponses(401, 403, 404, 429),
  },
});

/** `/api/v1/organization`: the caller's organization as billing sees it. */
export function createOrganizationRouter(ctx: AppContext): Router {
  const router = Router();
  router.get("/", requireScope("billing:read"), async (req, res) => {
    res.json(await getOrganizationOverview(ctx.db, req.auth.organizationId, ctx.clock.now()));
  });
  return router;
}
