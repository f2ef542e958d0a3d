import type { PrismaClient } from "@zigznote/database";
import { createMeeting, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { createStripeClient, subscribe, type BillingDeps } from "../../src/billing";
import { authHeaderFor } from "../support/auth";
import type { TestApp } from "../support/helpers";
import { LEVEL, useTestAppWithCapturedLogs, type CapturedLogs } from "../support/logCapture";

// The test apps configure neither Stripe (STRIPE_SECRET_KEY) nor Recall (RECALL_API_KEY) nor
// any webhook secret.
let testApp: TestApp;
let logs: CapturedLogs;
useTestAppWithCapturedLogs((started) => ({ testApp, logs } = started));

/** The log entries written while `fn` ran. */
async function logsDuring(fn: () => Promise<void>) {
  const start = logs.lines.length;
  await fn();
  return logs.entries().slice(start);
}

function expectNotConfigured(response: request.Response, provider: string, variables: string[]) {
  expect(response.status).toBe(503);
  expect(response.body).toEqual({
    error: {
      code: "PROVIDER_NOT_CONFIGURED",
      message: expect.any(String),
      details: { provider, variables },
    },
    requestId: expect.any(String),
  });
}

describe("a provider this deployment does not configure", () => {
  it("answers 503 PROVIDER_NOT_CONFIGURED for billing changes, before writing anything", async () => {
    const admin = await authHeaderFor(testApp);
    const before = await testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    for (const [path, body] of [
      ["/api/v1/billing/subscription", { planSlug: "pro" }],
      ["/api/v1/billing/subscription/cancel", {}],
    ] as const) {
      const entries = await logsDuring(async () => {
        const response = await request(testApp.app).post(path).set(admin.headers).send(body);
        expectNotConfigured(response, "stripe", ["STRIPE_SECRET_KEY"]);
      });
      expectOneWarning(entries, { provider: "stripe", variables: ["STRIPE_SECRET_KEY"] });
    }
    const after = await testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: admin.organizationId },
    });
    expect(after).toEqual(before);
    expect(
      await testApp.ctx.db.subscription.count({ where: { organizationId: admin.organizationId } }),
    ).toBe(0);
  });

  it("names STRIPE_PRICE_<PLAN> when Stripe is configured but the paid plan has no price", async () => {
    const admin = await authHeaderFor(testApp);
    const slug = `unpriced${uniqueSuffix()}`.toLowerCase().replace(/[^a-z0-9]/g, "");
    const rollback = new Error("rollback");
    // The plan exists only inside this transaction: other suites list the plans.
    const outcome = testApp.ctx.db.$transaction(async (tx) => {
      await tx.plan.create({ data: { slug, name: "Unpriced", priceCents: 100, rank: 99 } });
      const deps: BillingDeps = {
        db: tx as unknown as PrismaClient,
        // Never reached: the plan is refused before any call.
        stripe: createStripeClient({
          secretKey: "sk_test_unused",
          host: "127.0.0.1",
          port: 1,
          protocol: "http",
          maxNetworkRetries: 0,
          timeoutMs: 1000,
        }),
        clock: testApp.ctx.clock,
        logger: logs.logger,
        settings: testApp.ctx.modules.billing.deps.settings,
      };
      await expect(
        subscribe(deps, { organizationId: admin.organizationId, planSlug: slug }),
      ).rejects.toMatchObject({
        status: 503,
        code: "PROVIDER_NOT_CONFIGURED",
        details: { provider: "stripe", variables: [`STRIPE_PRICE_${slug.toUpperCase()}`] },
      });
      throw rollback;
    });
    await expect(outcome).rejects.toBe(rollback);
  });

  it("answers 503 PROVIDER_NOT_CONFIGURED for a bot, leaving no bot row", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: caller.organizationId });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const entries = await logsDuring(async () => {
        const response = await request(testApp.app)
          .post(`/api/v1/meetings/${meeting.id}/bot`)
          .set(caller.headers)
          .send({});
        expectNotConfigured(response, "recall", ["RECALL_API_KEY"]);
      });
      expectOneWarning(entries, { provider: "recall", variables: ["RECALL_API_KEY"] });
    }
    expect(await testApp.ctx.db.bot.count({ where: { meetingId: meeting.id } })).toBe(0);
    const stored = await testApp.ctx.db.meeting.findUniqueOrThrow({ where: { id: meeting.id } });
    expect(stored.status).toBe(meeting.status);
  });

  it("answers a webhook with 503 PROVIDER_NOT_CONFIGURED naming the signing secret", async () => {
    for (const [provider, variable] of [
      ["stripe", "STRIPE_WEBHOOK_SECRET"],
      ["clerk", "CLERK_WEBHOOK_SECRET"],
      ["recall", "RECALL_WEBHOOK_SECRET"],
    ] as const) {
      const entries = await logsDuring(async () => {
        const response = await request(testApp.app)
          .post(`/webhooks/${provider}`)
          .set("Content-Type", "application/json")
          .send({ type: "anything" });
        expectNotConfigured(response, provider, [variable]);
      });
      expectOneWarning(entries, { provider, variables: [variable] });
    }
  });
});

/** One warning naming what to set, nothing at error level, and no stack anywhere. */
function expectOneWarning(
  entries: ReturnType<CapturedLogs["entries"]>,
  missing: { provider: string; variables: string[] },
) {
  expect(entries.filter((entry) => entry.level >= LEVEL.error)).toEqual([]);
  const warnings = entries.filter((entry) => entry.level === LEVEL.warn);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject(missing);
  expect(JSON.stringify(entries)).not.toContain('"stack"');
}
