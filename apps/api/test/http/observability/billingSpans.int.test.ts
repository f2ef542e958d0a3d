import { randomBytes } from "node:crypto";
import { uniqueSuffix } from "@zigznote/database/testing";
import type Stripe from "stripe";
import {
  authHeaderFor,
  platformAdminHeadersFor,
  type AuthenticatedCaller,
} from "../../support/auth";
import { FakeStripeServer } from "../../support/fakes/stripeServer";
import { createTestApp, type TestApp } from "../../support/helpers";
import { TestSmtpServer } from "../../support/smtpServer";
import { newStripeSecret, stripeHeaders } from "../../support/webhookSigning";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./otlpReceiver";
import { dumpSpans, expectNoLeaks, type Secret } from "./spanLeaks";
import {
  callTraced,
  spansOfTraces,
  startTracedServer,
  type RunningServer,
  type TracedCall,
} from "./tracedServer";

/**
 * The tracing promise on billing, as an operator runs the API (the built server, spans exported
 * over OTLP to a receiver here): Checkout and the customer portal through Stripe's SDK (a fake
 * Stripe speaking its API), Stripe's signed webhooks, the notices they cause e-mailed over SMTP
 * (a real SMTP server here, one recipient refused with its address quoted), and a job run from
 * the admin console. Every span of those traces is searched for what the test made: Stripe's
 * secret key, the webhook signing secret and each Stripe-Signature, the Checkout and portal
 * links (bearer links to a customer's payment pages), the billing and admin addresses, the
 * billing address typed at Checkout, the session token and the request bodies' text.
 */

const webhookSecret = newStripeSecret();
const street = `${randomBytes(6).toString("hex")} Secret Street`;
let receiver: OtlpReceiver;
let stripe: FakeStripeServer;
let smtp: TestSmtpServer;
let testApp: TestApp;
let server: RunningServer;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  stripe = await FakeStripeServer.start({
    secretKey: `sk_test_${randomBytes(16).toString("hex")}`,
  });
  stripe.addPrice({ id: "price_test_pro", unitAmount: 1900 });
  stripe.addPrice({ id: "price_test_business", unitAmount: 4900 });
  smtp = await TestSmtpServer.start();
  testApp = createTestApp();
  server = await startTracedServer({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    STRIPE_SECRET_KEY: stripe.secretKey,
    STRIPE_API_HOST: "127.0.0.1",
    STRIPE_API_PORT: String(stripe.port),
    STRIPE_API_PROTOCOL: "http",
    STRIPE_PRICE_PRO: "price_test_pro",
    STRIPE_PRICE_BUSINESS: "price_test_business",
    STRIPE_WEBHOOK_SECRET: webhookSecret,
    // Checkout collects the billing address, and the customer keeps it.
    STRIPE_AUTOMATIC_TAX: "true",
    EMAIL_TRANSPORT: "smtp",
    SMTP_URL: smtp.url(),
    APP_URL: "https://app.zigznote.test",
  });
}, 90_000);
afterAll(async () => {
  dumpSpans(receiver.spans);
  expect(await server.stop()).toBe(0);
  await receiver.close();
  await stripe.close();
  await smtp.close();
  await testApp.close();
});

const call = (path: string, init?: Parameters<typeof callTraced>[2]) =>
  callTraced(server, path, init);

/** Posts a signed Stripe event; the signature's v1 value is a secret of the test's. */
async function deliver(event: Stripe.Event, signatures: Secret[]): Promise<TracedCall> {
  const body = JSON.stringify(event);
  const headers = stripeHeaders(webhookSecret, body);
  const signature = /v1=([0-9a-f]+)/.exec(headers["stripe-signature"]!)![1]!;
  signatures.push({ label: `the Stripe-Signature of ${event.type}`, value: signature });
  const delivered = await call("/webhooks/stripe", { method: "POST", headers, body });
  expect(delivered.response.status).toBe(200);
  return delivered;
}

function sessionSecrets(caller: AuthenticatedCaller): Secret[] {
  return [
    { label: "a Clerk session token", value: caller.token },
    { label: "a Clerk session token's signature", value: caller.token.split(".")[2]! },
  ];
}

const stripeSecrets = (): Secret[] => [
  { label: "Stripe's secret key", value: stripe.secretKey },
  { label: "the Stripe webhook signing secret", value: webhookSecret },
];

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("billing flows under tracing", () => {
  let admin: AuthenticatedCaller;
  let adminEmail: string;
  let subscriptionId: string;
  const billingEmail = `ap-${uniqueSuffix()}@billing.example.test`;
  const signatures: Secret[] = [];
  const traces: TracedCall[] = [];

  beforeAll(async () => {
    admin = await authHeaderFor(testApp);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { id: admin.userId } });
    adminEmail = user.email!;
  });

  it("keeps Stripe's key, the Checkout and portal links, signatures and addresses out of Checkout's spans", async () => {
    const started = await call("/api/v1/billing/checkout", {
      method: "POST",
      headers: { ...admin.headers, "content-type": "application/json" },
      body: JSON.stringify({ planSlug: "pro" }),
    });
    expect(started.response.status).toBe(200);
    const checkoutUrl = ((await started.response.json()) as { url: string }).url;
    const sessionId = checkoutUrl.split("/").pop()!;
    const events = stripe.completeCheckout(sessionId, {
      email: billingEmail,
      address: { line1: street, city: "Lyon", postal_code: "69001", country: "FR" },
    });
    subscriptionId = stripe.checkoutSessions.get(sessionId)!.subscription as string;
    const deliveries = [];
    for (const event of events) deliveries.push(await deliver(event, signatures));
    // A forged delivery (another secret's signature) is refused before its body is read.
    const forgedBody = JSON.stringify(events[0]);
    const forgedHeaders = stripeHeaders(newStripeSecret(), forgedBody);
    signatures.push({
      label: "a forged Stripe-Signature",
      value: /v1=([0-9a-f]+)/.exec(forgedHeaders["stripe-signature"]!)![1]!,
    });
    const forged = await call("/webhooks/stripe", {
      method: "POST",
      headers: forgedHeaders,
      body: forgedBody,
    });
    expect(forged.response.status).toBe(401);
    deliveries.push(forged);
    const portal = await call("/api/v1/billing/portal", { method: "POST", headers: admin.headers });
    expect(portal.response.status).toBe(200);
    const portalUrl = ((await portal.response.json()) as { url: string }).url;
    const invoices = await call("/api/v1/billing/invoices", { headers: admin.headers });
    expect(invoices.response.status).toBe(200);
    const hostedLinks = JSON.stringify(await invoices.response.json()).match(
      /https:\/\/invoice[^"]+/g,
    );
    traces.push(started, ...deliveries, portal, invoices);

    const spans = await spansOfTraces(
      receiver,
      traces.map((trace) => trace.traceId),
    );
    // Stripe's SDK calls are client spans of the http instrumentation, their query strings cut.
    const stripeCalls = spans.filter((span) =>
      String(span.attributes["url.full"]).startsWith(`http://127.0.0.1:${stripe.port}/v1/`),
    );
    expect(stripeCalls.map((span) => span.attributes["url.full"])).toContain(
      `http://127.0.0.1:${stripe.port}/v1/checkout/sessions`,
    );
    expect(spans.filter((span) => span.name.startsWith("webhook stripe ")).length).toBe(
      events.length,
    );
    expectNoLeaks(spans, [
      ...sessionSecrets(admin),
      ...stripeSecrets(),
      ...signatures,
      { label: "the Checkout link", value: checkoutUrl },
      { label: "the portal link", value: portalUrl },
      ...(hostedLinks ?? []).map((link) => ({ label: "a hosted invoice link", value: link })),
      { label: "the billing address", value: billingEmail },
      { label: "the admin's address", value: adminEmail },
      { label: "the street typed at Checkout", value: street },
    ]);
  });

  it("keeps the recipients out of the notices a failed payment sends, a refused one too", async () => {
    // The admin's server refuses the message and quotes the address.
    smtp.failNext({ to: adminEmail, code: 550, message: `mailbox ${adminEmail} unavailable` });
    const failed = [];
    for (const event of stripe.failRenewal(subscriptionId)) {
      failed.push(await deliver(event, signatures));
    }
    await waitUntil(() => smtp.to(billingEmail).length > 0);
    const spans = await spansOfTraces(
      receiver,
      failed.map((trace) => trace.traceId),
      1_000,
    );
    const deliveries = spans.filter((span) => span.name.startsWith("notice.deliver "));
    expect(deliveries.length).toBeGreaterThan(0);
    const sends = spans.filter((span) => span.name === "smtp send");
    expect(sends.some((span) => span.status.code === 2)).toBe(true);
    expect(sends.some((span) => span.events.some((event) => event.name === "exception"))).toBe(
      true,
    );
    expectNoLeaks(spans, [
      ...stripeSecrets(),
      ...signatures,
      { label: "the billing address", value: billingEmail },
      { label: "the admin's address", value: adminEmail },
    ]);
  });

  it("keeps the admin's reason and session out of a job run's spans", async () => {
    const operator = platformAdminHeadersFor(admin);
    const reason = `reason-${randomBytes(12).toString("hex")}`;
    const run = await call("/api/v1/admin/jobs/warnExpiringCards/run", {
      method: "POST",
      headers: { ...operator, "content-type": "application/json" },
      body: JSON.stringify({ reason }),
    });
    expect(run.response.status).toBe(200);
    const spans: ReceivedSpan[] = await spansOfTraces(receiver, [run.traceId]);
    expect(spans.some((span) => span.name === "job warnExpiringCards")).toBe(true);
    expectNoLeaks(spans, [
      { label: "the admin console's session token", value: operator.Authorization.slice(7) },
      { label: "the run's reason (a request body)", value: reason },
      { label: "the admin's address", value: adminEmail },
    ]);
  });
});
