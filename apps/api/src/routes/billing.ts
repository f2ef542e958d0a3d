import { Router } from "express";
import {
  getCurrentSubscription,
  listPlans,
  type BillingChangeResult,
} from "../billing/BillingService";
import { serializePlan, serializeSubscription } from "../billing/serializers";
import type { AppContext } from "../context";
import { requireRole, requireScope } from "../middleware/auth";
import { validate, validated } from "../middleware/validate";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import {
  BillingChangeResultSchema,
  CancelSubscriptionBodySchema,
  ChangePlanBodySchema,
  CurrentSubscriptionSchema,
  PlanListSchema,
} from "./billing.schemas";

const security = [{ [bearerAuth.name]: [] }];

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/billing/plans",
  summary: "List the plans and their limits, cheapest first (scope billing:read)",
  security,
  responses: {
    200: { description: "Plans", content: { "application/json": { schema: PlanListSchema } } },
    ...errorResponses(401, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/billing/subscription",
  summary: "The organization's current subscription, or null on free (scope billing:read)",
  security,
  responses: {
    200: {
      description: "Current subscription",
      content: { "application/json": { schema: CurrentSubscriptionSchema } },
    },
    ...errorResponses(401, 403, 429),
  },
});

openApiRegistry.registerPath({
  method: "post",
  path: "/api/v1/billing/subscription",
  summary: "Subscribe to a paid plan, or change the plan (admins' sessions only)",
  description:
    "Creates the Stripe customer (once) and subscription, or changes the price of the live one " +
    "(upgrades prorated, downgrades not). Plan violations are re-checked in the same transaction.",
  security,
  request: { body: { content: { "application/json": { schema: ChangePlanBodySchema } } } },
  responses: {
    200: {
      description: "The subscription after the change",
      content: { "application/json": { schema: BillingChangeResultSchema } },
    },
    ...errorResponses(400, 401, 403, 404, 409, 429, 502, 503),
  },
});

openApiRegistry.registerPath({
  method: "post",
  path: "/api/v1/billing/subscription/cancel",
  summary: "Cancel the subscription at period end (default) or now (admins' sessions only)",
  security,
  request: { body: { content: { "application/json": { schema: CancelSubscriptionBodySchema } } } },
  responses: {
    200: {
      description: "The subscription after the cancellation",
      content: { "application/json": { schema: BillingChangeResultSchema } },
    },
    ...errorResponses(400, 401, 403, 404, 409, 429, 502, 503),
  },
});

function serializeChange(result: BillingChangeResult) {
  return {
    data: result.subscription ? serializeSubscription(result.subscription) : null,
    planSlug: result.planSlug,
    changed: result.changed,
  };
}

/**
 * `/api/v1/billing`. Reads need `billing:read` (every member, keys holding it). Changes need an
 * admin's session: `requireRole("admin")` refuses API keys, even with `billing:write` (money
 * moves and limits change; a person answers for it). No write guard here: a suspended
 * organization must still be able to pay or change plan.
 */
export function createBillingRouter(ctx: AppContext): Router {
  const router = Router();
  const { service } = ctx.billing;

  router.get("/plans", requireScope("billing:read"), async (_req, res) => {
    const plans = await listPlans(ctx.db);
    res.json({ data: plans.map(serializePlan) });
  });

  router.get("/subscription", requireScope("billing:read"), async (req, res) => {
    const subscription = await getCurrentSubscription(ctx.db, req.auth.organizationId);
    res.json({ data: subscription ? serializeSubscription(subscription) : null });
  });

  router.post(
    "/subscription",
    requireRole("admin"),
    validate({ body: ChangePlanBodySchema }),
    async (req, res) => {
      const { planSlug } = validated(req, "body", ChangePlanBodySchema);
      const result = await service.subscribe(req.auth.organizationId, planSlug);
      // A downgrade may have queued violation notices: send them without holding the answer.
      void ctx.billing.deliverNotifications();
      res.json(serializeChange(result));
    },
  );

  router.post(
    "/subscription/cancel",
    requireRole("admin"),
    validate({ body: CancelSubscriptionBodySchema }),
    async (req, res) => {
      const { atPeriodEnd } = validated(req, "body", CancelSubscriptionBodySchema);
      const result = await service.cancel(req.auth.organizationId, { atPeriodEnd });
      void ctx.billing.deliverNotifications();
      res.json(serializeChange(result));
    },
  );

  return router;
}
