import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from "@opentelemetry/sdk-trace";
import { createOrganizationWithAdmin, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import type { PrismaClient } from "@zigznote/database";
import { runJob, type JobDefinition } from "../../../src/jobs";
import { createJobScheduler } from "../../../src/jobs/scheduler";
import { SanitizingSpanExporter } from "../../../src/lib/spanSanitizer";
import { inSpan } from "../../../src/lib/tracing";
import { enqueueAdminNotices } from "../../../src/notifications";
import { buildClerkScenario } from "../../support/clerkFixtures";
import { createTestApp, type TestApp } from "../../support/helpers";
import { captureLogs, type CapturedLogs } from "../../support/logCapture";
import { TestSmtpServer } from "../../support/smtpServer";
import { newSvixSecret, svixHeaders } from "../../support/webhookSigning";

/**
 * The API's own spans (job runs, webhook claims and handlers, notice deliveries and their SMTP
 * exchanges), on a real app and database, collected in memory through the same sanitizer the
 * OTLP export passes. The library instrumentations (http, pg, ...) are left to
 * tracing.int.test.ts, which runs the built server as operators do.
 */

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({
  spanProcessors: [new SimpleSpanProcessor({ exporter: new SanitizingSpanExporter(exporter) })],
});
const clerkSecret = newSvixSecret();
let smtp: TestSmtpServer;
let logs: CapturedLogs;
let testApp: TestApp;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  smtp = await TestSmtpServer.start();
  logs = captureLogs("info");
  testApp = createTestApp({
    logger: logs.logger,
    env: {
      CLERK_WEBHOOK_SECRET: clerkSecret,
      EMAIL_TRANSPORT: "smtp",
      SMTP_URL: smtp.url(),
    },
  });
});
afterAll(async () => {
  await testApp.close();
  await smtp.close();
  await provider.shutdown();
  trace.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

const spans = () => exporter.getFinishedSpans();
const named = (name: string) => spans().filter((span) => span.name === name);
const childrenOf = (parent: ReadableSpan) =>
  spans().filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId);

/** Every string a span carries, for leak checks. */
function stringsOf(span: ReadableSpan): string[] {
  return [
    span.name,
    span.status.message ?? "",
    ...Object.values(span.attributes).map(String),
    ...span.events.flatMap((event) => Object.values(event.attributes ?? {}).map(String)),
  ];
}

function job(name: string, run: JobDefinition["run"]): JobDefinition {
  return { name, schedule: "* * * * *", description: "a test job", leaseMs: 60_000, run };
}

describe("runJob", () => {
  it("makes each run one span with its outcome; the run's work and log lines are in its trace", async () => {
    const name = `tracedJob_${uniqueSuffix()}`;
    const scheduledFor = new Date();
    const definition = job(name, async () => {
      await inSpan("inner work", {}, () => Promise.resolve());
      return { rowsAffected: 2 };
    });
    const outcome = await runJob(testApp.ctx, definition, { scheduledFor, instanceId: "test" });
    expect(outcome.status).toBe("succeeded");

    const [span] = named(`job ${name}`);
    expect(span).toBeDefined();
    expect(span!.parentSpanContext).toBeUndefined();
    expect(span!.attributes).toMatchObject({
      "zigznote.job.name": name,
      "zigznote.job.outcome": "succeeded",
      "zigznote.job.rows_affected": 2,
      "zigznote.job.instance_id": "test",
    });
    expect(childrenOf(span!).map((child) => child.name)).toEqual(["inner work"]);
    const line = logs
      .entries()
      .find((entry) => entry.msg === "job run succeeded" && entry.job === name);
    expect(line).toMatchObject({
      traceId: span!.spanContext().traceId,
      spanId: span!.spanContext().spanId,
    });

    // The same tick again: claimed already, so skipped, and said so.
    await runJob(testApp.ctx, definition, { scheduledFor, instanceId: "other" });
    const skipped = named(`job ${name}`)[1]!;
    expect(skipped.attributes).toMatchObject({
      "zigznote.job.outcome": "skipped",
      "zigznote.job.skip_reason": "already_ran_this_tick",
    });
  });

  it("marks a failed run's span as an error, without the e-mail address its error quoted", async () => {
    const name = `failingJob_${uniqueSuffix()}`;
    const definition = job(name, () =>
      Promise.reject(new Error("could not reach ops@example.test about it")),
    );
    const outcome = await runJob(testApp.ctx, definition, {
      scheduledFor: new Date(),
      instanceId: "test",
    });
    expect(outcome.status).toBe("failed");
    const [span] = named(`job ${name}`);
    expect(span!.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: "could not reach [email] about it",
    });
    expect(span!.attributes["zigznote.job.outcome"]).toBe("failed");
  });
});

describe("the job scheduler", () => {
  it("logs a tick it could not claim inside the run's span, with its trace id", async () => {
    const name = `unclaimableJob_${uniqueSuffix()}`;
    let ran = false;
    const definition = {
      ...job(name, () => {
        ran = true;
        return Promise.resolve({ rowsAffected: 0 });
      }),
      schedule: "* * * * * *", // every second
    };
    // The database refuses the claim's transaction, as when it is down.
    const db = {
      $transaction: () => Promise.reject(new Error("connection refused")),
    } as unknown as PrismaClient;
    const scheduler = createJobScheduler({ ...testApp.ctx, db }, [definition], {
      timezone: "UTC",
      start: true,
      instanceId: "test",
    });
    const lineOf = () =>
      logs
        .entries()
        .find((entry) => entry.msg === "job could not be claimed" && entry.job === name);
    try {
      const deadline = Date.now() + 5_000;
      while (lineOf() === undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await scheduler.stop();
    }
    expect(ran).toBe(false);
    const span = named(`job ${name}`)[0];
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(lineOf()).toMatchObject({
      level: 50,
      err: { message: "connection refused" },
      traceId: span!.spanContext().traceId,
      spanId: span!.spanContext().spanId,
    });
  });
});

describe("webhook processing", () => {
  it("gives each delivery a span, its claim and its handler below it; none names a user's address", async () => {
    const prefix = uniqueSuffix();
    const scenario = buildClerkScenario(prefix, Date.now());
    const deliver = (event: (typeof scenario)[number]) => {
      const body = JSON.stringify(event.body);
      return request(testApp.app)
        .post("/webhooks/clerk")
        .set(svixHeaders(clerkSecret, event.msgId, body))
        .send(body);
    };
    for (const event of scenario) expect((await deliver(event)).status).toBe(200);

    const deliveryOf = (msgId: string) =>
      spans().find((span) => span.attributes["zigznote.webhook.event_id"] === msgId)!;
    for (const event of scenario) {
      const span = deliveryOf(event.msgId);
      expect(span.name).toBe(`webhook clerk ${event.body.type}`);
      expect(span.attributes["zigznote.webhook.provider"]).toBe("clerk");
    }
    // A transaction handler: the claim, then the handler, each with its own span.
    const organizationCreated = scenario.find(
      (event) => event.body.type === "organization.created",
    )!;
    const transactional = deliveryOf(organizationCreated.msgId);
    expect(transactional.attributes["zigznote.webhook.outcome"]).toBe("processed");
    const below = childrenOf(transactional);
    expect(below.map((span) => span.name)).toEqual(["webhook.claim", "webhook.handle"]);
    expect(below[0]!.attributes["zigznote.webhook.claimed"]).toBe(true);
    // A one-statement handler: claim and effect are one statement, one span.
    const userCreated = scenario.find((event) => event.body.type === "user.created")!;
    const [statement] = childrenOf(deliveryOf(userCreated.msgId));
    expect(statement!.name).toBe("webhook.claim");
    expect(statement!.attributes["zigznote.webhook.handled_in_claim"]).toBe(true);
    // No handler: acknowledged, not recorded (a handler shipped later applies its replay).
    const unhandled = scenario.find((event) => event.body.type === "session.created")!;
    expect(deliveryOf(unhandled.msgId).attributes["zigznote.webhook.outcome"]).toBe("unhandled");

    // The events carried the users' addresses (profiles, memberships' identifiers); no span does.
    const addresses = JSON.stringify(scenario).match(/[\w.+-]+@example\.test/g)!;
    expect(addresses.length).toBeGreaterThan(3);
    for (const span of spans()) {
      const text = stringsOf(span).join("\n");
      for (const address of addresses) expect(text).not.toContain(address);
    }

    // A redelivery: a duplicate, its claim and no handler.
    exporter.reset();
    expect((await deliver(organizationCreated)).status).toBe(200);
    const duplicate = deliveryOf(organizationCreated.msgId);
    expect(duplicate.attributes["zigznote.webhook.outcome"]).toBe("duplicate");
    const claim = childrenOf(duplicate);
    expect(claim.map((span) => span.name)).toEqual(["webhook.claim"]);
    expect(claim[0]!.attributes["zigznote.webhook.claimed"]).toBe(false);
  });
});

describe("notice delivery", () => {
  async function queueNotice(organizationId: string) {
    await enqueueAdminNotices({ db: testApp.ctx.db }, [
      {
        organizationId,
        type: "plan.violation_resolved",
        payload: { planSlug: "free", type: "meetings" },
        dedupeKey: `traced:${uniqueSuffix()}`,
      },
    ]);
    return testApp.ctx.db.notification.findFirstOrThrow({
      where: { organizationId },
      orderBy: { createdAt: "desc" },
    });
  }

  it("gives each delivery a span with its SMTP exchange below it, and neither names the recipient", async () => {
    const { organization, user } = await createOrganizationWithAdmin(testApp.ctx.db);
    const notice = await queueNotice(organization.id);
    await testApp.ctx.notices.deliverNow(testApp.ctx.clock.now());
    expect(smtp.to(user.email!)).toHaveLength(1);

    const delivery = named("notice.deliver plan.violation_resolved").find(
      (span) => span.attributes["zigznote.notice.id"] === notice.id,
    );
    expect(delivery!.attributes).toMatchObject({
      "zigznote.notice.type": "plan.violation_resolved",
      "zigznote.notice.outcome": "sent",
      "zigznote.organization.id": organization.id,
    });
    const [send] = childrenOf(delivery!).filter((span) => span.name === "smtp send");
    expect(send!.kind).toBe(SpanKind.CLIENT);
    expect(send!.attributes).toMatchObject({
      "server.address": "127.0.0.1",
      "server.port": smtp.port,
    });
    for (const span of [delivery!, send!]) {
      for (const value of stringsOf(span)) expect(value).not.toContain(user.email!);
    }
  });

  it("marks a refused delivery as an error and keeps the address the server quoted out of it", async () => {
    const { organization, user } = await createOrganizationWithAdmin(testApp.ctx.db);
    smtp.failNext({ to: user.email!, code: 550, message: `mailbox ${user.email!} unavailable` });
    const notice = await queueNotice(organization.id);
    await testApp.ctx.notices.deliverNow(testApp.ctx.clock.now());

    const delivery = named("notice.deliver plan.violation_resolved").find(
      (span) => span.attributes["zigznote.notice.id"] === notice.id,
    )!;
    expect(delivery.attributes["zigznote.notice.outcome"]).toBe("failed");
    expect(delivery.status.code).toBe(SpanStatusCode.ERROR);
    const [send] = childrenOf(delivery).filter((span) => span.name === "smtp send");
    expect(send!.status.code).toBe(SpanStatusCode.ERROR);
    expect(send!.events.map((event) => event.name)).toContain("exception");
    const quoted = [delivery, send!].flatMap(stringsOf).join("\n");
    expect(quoted).toContain("550");
    expect(quoted).toContain("[email]");
    expect(quoted).not.toContain(user.email!);
  });
});
