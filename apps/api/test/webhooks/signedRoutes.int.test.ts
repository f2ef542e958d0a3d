import { Prisma } from "@zigznote/database";
import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { isProcessed } from "../../src/webhooks";
import { upsertUser } from "../../src/identity/identityService";
import { type StatementHandler, type WebhookHandler } from "../../src/webhooks";
import { clerkUserData } from "../support/clerkFixtures";
import { createTestApp, type TestApp } from "../support/helpers";
import {
  newStripeSecret,
  newSvixSecret,
  stripeHeaders,
  svixHeaders,
} from "../support/webhookSigning";

const clerkSecret = newSvixSecret();
const recallSecret = newSvixSecret();
const stripeSecret = newStripeSecret();
const env = {
  CLERK_WEBHOOK_SECRET: clerkSecret,
  RECALL_WEBHOOK_SECRET: recallSecret,
  STRIPE_WEBHOOK_SECRET: stripeSecret,
  WEBHOOK_BODY_LIMIT: "16kb",
};

function userCreated(): { clerkId: string; msgId: string; body: string } {
  const clerkId = `user_${uniqueSuffix()}`;
  const at = Date.now();
  const data = clerkUserData({
    id: clerkId,
    email: `${clerkId}@example.test`,
    firstName: "Ada",
    lastName: "Lovelace",
    createdAt: at,
    updatedAt: at,
  });
  const body = JSON.stringify({
    data,
    object: "event",
    type: "user.created",
    timestamp: at,
    instance_id: "ins_test",
  });
  return { clerkId, msgId: `msg_${uniqueSuffix()}`, body };
}

let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp({ env });
});
afterAll(() => testApp.close());

async function rowsFor(msgId: string, clerkId: string): Promise<number> {
  const db = testApp.ctx.db;
  return (
    (await db.processedWebhook.count({ where: { eventId: msgId } })) +
    (await db.user.count({ where: { clerkId } }))
  );
}

/** Redelivers a failed event: the first redelivery is applied, a second is a duplicate. */
async function expectRedeliveryAppliedThenDuplicate(
  app: TestApp,
  headers: Record<string, string>,
  body: string,
): Promise<void> {
  const redelivered = await request(app.app).post("/webhooks/clerk").set(headers).send(body);
  expect(redelivered.status).toBe(200);
  expect(redelivered.body).toEqual({ received: true });
  const duplicate = await request(app.app).post("/webhooks/clerk").set(headers).send(body);
  expect(duplicate.body).toEqual({ received: true, duplicate: true });
}

/** The event's effect and its claim each landed exactly once. */
async function expectOneUserAndOneClaim(clerkId: string, msgId: string): Promise<void> {
  expect(await testApp.ctx.db.user.count({ where: { clerkId } })).toBe(1);
  expect(await testApp.ctx.db.processedWebhook.count({ where: { eventId: msgId } })).toBe(1);
}

describe("POST /webhooks/clerk", () => {
  it("applies a signed event once and answers duplicates with 200 duplicate: true", async () => {
    const { clerkId, msgId, body } = userCreated();
    const headers = svixHeaders(clerkSecret, msgId, body);
    const first = await request(testApp.app).post("/webhooks/clerk").set(headers).send(body);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true });
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { clerkId } });
    expect(user.email).toBe(`${clerkId}@example.test`);

    const again = await request(testApp.app).post("/webhooks/clerk").set(headers).send(body);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ received: true, duplicate: true });
    expect(await isProcessed(testApp.ctx.db, "clerk", msgId)).toBe(true);
  });

  it("accepts the Standard Webhooks header set (webhook-id/-timestamp/-signature)", async () => {
    const { clerkId, msgId, body } = userCreated();
    const response = await request(testApp.app)
      .post("/webhooks/clerk")
      .set(svixHeaders(clerkSecret, msgId, body, { style: "standard" }))
      .send(body);
    expect(response.status).toBe(200);
    expect(await testApp.ctx.db.user.count({ where: { clerkId } })).toBe(1);
  });

  it("acknowledges an event type without a handler and records nothing, so a handler shipped later applies its redelivery", async () => {
    const msgId = `msg_${uniqueSuffix()}`;
    const body = JSON.stringify({ data: { id: "sess_1" }, object: "event", type: "session.ended" });
    const response = await request(testApp.app)
      .post("/webhooks/clerk")
      .set(svixHeaders(clerkSecret, msgId, body))
      .send(body);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ received: true, handled: false });
    expect(await isProcessed(testApp.ctx.db, "clerk", msgId)).toBe(false);

    // The next release handles the type and the operator replays the event from the provider's
    // dashboard: it takes effect (once), instead of being answered as a duplicate.
    const applied: string[] = [];
    const next = createTestApp({
      env,
      db: testApp.ctx.db,
      configureWebhooks: (registry) =>
        registry.register("clerk", "session.ended", (event) => {
          applied.push(event.id);
          return Promise.resolve();
        }),
    });
    try {
      const headers = svixHeaders(clerkSecret, msgId, body);
      const replayed = await request(next.app).post("/webhooks/clerk").set(headers).send(body);
      expect(replayed.body).toEqual({ received: true });
      const again = await request(next.app).post("/webhooks/clerk").set(headers).send(body);
      expect(again.body).toEqual({ received: true, duplicate: true });
      expect(applied).toEqual([msgId]);
    } finally {
      await next.close();
    }
  });

  describe("rejects without storing anything", () => {
    const cases: Array<{
      name: string;
      status: number;
      code: string;
      build: () => {
        msgId: string;
        clerkId: string;
        body: string;
        headers: Record<string, string>;
      };
    }> = [
      {
        name: "a tampered body",
        status: 401,
        code: "WEBHOOK_SIGNATURE_INVALID",
        build: () => {
          const event = userCreated();
          const headers = svixHeaders(clerkSecret, event.msgId, event.body);
          return { ...event, headers, body: event.body.replace("Ada", "Eve") };
        },
      },
      {
        name: "a signature made with another secret",
        status: 401,
        code: "WEBHOOK_SIGNATURE_INVALID",
        build: () => {
          const event = userCreated();
          return { ...event, headers: svixHeaders(newSvixSecret(), event.msgId, event.body) };
        },
      },
      {
        name: "missing signature headers",
        status: 400,
        code: "WEBHOOK_SIGNATURE_MISSING",
        build: () => {
          const event = userCreated();
          const { "svix-signature": _omitted, ...headers } = svixHeaders(
            clerkSecret,
            event.msgId,
            event.body,
          );
          return { ...event, headers };
        },
      },
      {
        name: "a timestamp outside the 5 minute tolerance",
        status: 401,
        code: "WEBHOOK_SIGNATURE_INVALID",
        build: () => {
          const event = userCreated();
          const timestamp = new Date(Date.now() - 10 * 60_000);
          return {
            ...event,
            headers: svixHeaders(clerkSecret, event.msgId, event.body, { timestamp }),
          };
        },
      },
      {
        name: "a correctly signed body that is not JSON",
        status: 400,
        code: "INVALID_JSON",
        build: () => {
          const event = userCreated();
          const body = `{"type":"user.created","data":{"id":"${event.clerkId}"`;
          return { ...event, body, headers: svixHeaders(clerkSecret, event.msgId, body) };
        },
      },
      {
        name: "a body over WEBHOOK_BODY_LIMIT",
        status: 413,
        code: "PAYLOAD_TOO_LARGE",
        build: () => {
          const event = userCreated();
          const parsed = JSON.parse(event.body) as { data: Record<string, unknown> };
          parsed.data.public_metadata = { padding: "x".repeat(20_000) };
          const body = JSON.stringify(parsed);
          return { ...event, body, headers: svixHeaders(clerkSecret, event.msgId, body) };
        },
      },
    ];

    it.each(cases)("$name -> $status $code", async ({ build, status, code }) => {
      const { msgId, clerkId, body, headers } = build();
      const response = await request(testApp.app).post("/webhooks/clerk").set(headers).send(body);
      expect(response.status).toBe(status);
      expect(response.body).toMatchObject({ error: { code }, requestId: expect.any(String) });
      expect(await rowsFor(msgId, clerkId)).toBe(0);
    });
  });

  it("answers 503 PROVIDER_NOT_CONFIGURED naming the secret's variable when the provider has none, storing nothing", async () => {
    const unconfigured = createTestApp({ env: { STRIPE_WEBHOOK_SECRET: stripeSecret } });
    try {
      const { clerkId, msgId, body } = userCreated();
      const response = await request(unconfigured.app)
        .post("/webhooks/clerk")
        .set(svixHeaders(clerkSecret, msgId, body))
        .send(body);
      expect(response.status).toBe(503);
      expect(response.body.error).toMatchObject({
        code: "PROVIDER_NOT_CONFIGURED",
        details: { provider: "clerk", variables: ["CLERK_WEBHOOK_SECRET"] },
      });
      expect(await rowsFor(msgId, clerkId)).toBe(0);
    } finally {
      await unconfigured.close();
    }
  });
});

describe("handler failures", () => {
  it("answers 500 without a record when the handler fails, and processes the redelivery once", async () => {
    let attempts = 0;
    const failingFirst: WebhookHandler = async (event, tx) => {
      attempts += 1;
      const { data } = event.payload as { data: { id: string } };
      await upsertUser({ db: tx }, { clerkId: data.id, updatedAt: new Date() }); // must roll back with the claim
      if (attempts === 1) throw new Error("simulated failure after writing");
    };
    const failing = createTestApp({
      env,
      db: testApp.ctx.db,
      configureWebhooks: (registry) => registry.replace("clerk", "user.created", failingFirst),
    });

    const { clerkId, msgId, body } = userCreated();
    const headers = svixHeaders(clerkSecret, msgId, body);
    const failed = await request(failing.app).post("/webhooks/clerk").set(headers).send(body);
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe("WEBHOOK_HANDLER_FAILED");
    expect(await rowsFor(msgId, clerkId)).toBe(0);

    await expectRedeliveryAppliedThenDuplicate(failing, headers, body);
    expect(attempts).toBe(2);
    await expectOneUserAndOneClaim(clerkId, msgId);
  });

  it("records nothing when a single-statement handler's statement fails, and processes the redelivery once", async () => {
    let original: StatementHandler | undefined;
    let attempts = 0;
    const failingFirst: StatementHandler = {
      statement(event, claimed) {
        attempts += 1;
        // The upsert runs, then the statement fails as a whole (division by zero) on the first try.
        const effect = original!.statement(event, claimed);
        return attempts === 1
          ? Prisma.sql`${effect} RETURNING (1 / (SELECT count(*) - count(*) FROM claim))`
          : effect;
      },
    };
    const failing = createTestApp({
      env,
      db: testApp.ctx.db,
      configureWebhooks: (registry) => {
        original = registry.get("clerk", "user.created") as StatementHandler;
        registry.replace("clerk", "user.created", failingFirst);
      },
    });

    const { clerkId, msgId, body } = userCreated();
    const headers = svixHeaders(clerkSecret, msgId, body);
    const failed = await request(failing.app).post("/webhooks/clerk").set(headers).send(body);
    expect(failed.status).toBe(500);
    expect(await rowsFor(msgId, clerkId)).toBe(0);

    await expectRedeliveryAppliedThenDuplicate(failing, headers, body);
    // Built for every delivery; the database applies it only under the claim.
    expect(attempts).toBe(3);
    await expectOneUserAndOneClaim(clerkId, msgId);
  });

  it("runs afterCommit tasks only after a commit", async () => {
    const ran: string[] = [];
    let fail = true;
    const recallApp = createTestApp({
      env,
      db: testApp.ctx.db,
      configureWebhooks: (registry) =>
        registry.replace("recall", "bot.status_change", (event, _tx, hooks) => {
          hooks.afterCommit(() => {
            ran.push(event.id);
            return Promise.resolve();
          });
          return fail ? Promise.reject(new Error("fails")) : Promise.resolve();
        }),
    });
    const msgId = `msg_${uniqueSuffix()}`;
    const body = JSON.stringify({ event: "bot.status_change", data: { bot_id: "bot_1" } });
    const headers = svixHeaders(recallSecret, msgId, body);
    expect(
      (await request(recallApp.app).post("/webhooks/recall").set(headers).send(body)).status,
    ).toBe(500);
    expect(ran).toEqual([]);
    fail = false;
    expect(
      (await request(recallApp.app).post("/webhooks/recall").set(headers).send(body)).status,
    ).toBe(200);
    // The task is not awaited by the answer; it runs right after the commit.
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual([msgId]);
  });
});

describe("POST /webhooks/stripe", () => {
  // customer.created has no handler of its own: a no-op one makes it an event that is recorded.
  let handled: TestApp;
  beforeAll(() => {
    handled = createTestApp({
      env,
      db: testApp.ctx.db,
      configureWebhooks: (registry) =>
        registry.replace("stripe", "customer.created", () => Promise.resolve()),
    });
  });
  afterAll(() => handled.close());

  it("verifies with the Stripe SDK, records the event id and answers duplicates", async () => {
    const id = `evt_${uniqueSuffix()}`;
    const body = JSON.stringify({
      id,
      object: "event",
      api_version: "2024-06-20",
      created: Math.floor(Date.now() / 1000),
      type: "customer.created",
      data: { object: { id: "cus_1", object: "customer" } },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
    });
    const first = await request(handled.app)
      .post("/webhooks/stripe")
      .set(stripeHeaders(stripeSecret, body))
      .send(body);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ received: true });
    // A retry is signed again (new timestamp) but carries the same event id.
    const retry = await request(handled.app)
      .post("/webhooks/stripe")
      .set(stripeHeaders(stripeSecret, body))
      .send(body);
    expect(retry.body).toEqual({ received: true, duplicate: true });
    expect(await isProcessed(testApp.ctx.db, "stripe", id)).toBe(true);
  });

  it("rejects a stale or foreign signature with 401 and stores nothing", async () => {
    const id = `evt_${uniqueSuffix()}`;
    const body = JSON.stringify({
      id,
      object: "event",
      type: "invoice.paid",
      data: { object: {} },
    });
    const stale = await request(testApp.app)
      .post("/webhooks/stripe")
      .set(stripeHeaders(stripeSecret, body, Math.floor(Date.now() / 1000) - 600))
      .send(body);
    expect(stale.status).toBe(401);
    const foreign = await request(testApp.app)
      .post("/webhooks/stripe")
      .set(stripeHeaders(newStripeSecret(), body))
      .send(body);
    expect(foreign.status).toBe(401);
    const missing = await request(testApp.app)
      .post("/webhooks/stripe")
      .set("content-type", "application/json")
      .send(body);
    expect(missing.status).toBe(400);
    expect(await isProcessed(testApp.ctx.db, "stripe", id)).toBe(false);
  });
});

describe("GET /openapi.json", () => {
  it("documents the three webhook routes", async () => {
    const response = await request(testApp.app).get("/openapi.json");
    for (const provider of ["stripe", "clerk", "recall"]) {
      expect(response.body.paths[`/webhooks/${provider}`]?.post).toBeDefined();
    }
  });
});
