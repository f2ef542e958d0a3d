import { createPrismaClient, type Db, type PrismaClient } from "@zigznote/database";
import { uniqueSuffix } from "@zigznote/database/testing";
import type Stripe from "stripe";
import request from "supertest";
import { DEFAULT_CHECKOUT_OPTIONS, type BillingSettings } from "../../src/billing/settings";
import { createNotices, type Notices } from "../../src/notifications";
import {
  createStripeClient,
  stripeEventHandlers,
  type BillingDeps,
  type HandlerOutcome,
  type StripeClient,
} from "../../src/billing";
import { ManualClock } from "../../src/lib/clock";
import { createLogger } from "../../src/lib/logger";
import { testDatabaseUrl } from "./env";
import { FakeStripeServer, signStripeEvent } from "./fakes/stripeServer";
import { createTestApp, type TestApp } from "./helpers";
import { newStripeSecret, newSvixSecret, stripeHeaders, svixHeaders } from "./webhookSigning";

/** Everything a billing test needs: the test database, a fake Stripe, the real SDK, a clock. */
export interface BillingHarness {
  db: PrismaClient;
  fake: FakeStripeServer;
  stripe: StripeClient;
  clock: ManualClock;
  settings: BillingSettings;
  notices: Notices;
  /** What the billing service functions take (`subscribe(h.deps, ...)`). */
  deps: BillingDeps;
  webhookSecret: string;
  /** Signs the event, verifies it with the SDK as the webhook route will, and handles it. */
  deliver(event: Stripe.Event, db?: Db): Promise<HandlerOutcome>;
  close(): Promise<void>;
}

export const TEST_SETTINGS: Omit<BillingSettings, "notices"> = {
  gracePeriodDays: 7,
  maxRetryCount: 4,
  storageGraceDays: 7,
  appUrl: "http://app.zigznote.test",
  checkout: DEFAULT_CHECKOUT_OPTIONS,
  isDisputeReadOnly: false,
};

export async function createBillingHarness(): Promise<BillingHarness> {
  const fake = await FakeStripeServer.start();
  fake.addPrice({ id: "price_test_pro", unitAmount: 1900 });
  fake.addPrice({ id: "price_test_business", unitAmount: 4900 });
  // Wall time, so `created` stamps of consecutive changes follow each other as at Stripe.
  const clock = new ManualClock(new Date());
  fake.setNow(() => clock.now());
  const db = createPrismaClient(testDatabaseUrl, { maxConnections: 12 });
  const stripe = createStripeClient(fake.clientSettings());
  const logger = createLogger(process.env.LOG_LEVEL ?? "silent");
  const notices = createNotices({ db, clock, logger });
  const settings: BillingSettings = { ...TEST_SETTINGS, notices };
  const deps: BillingDeps = { db, stripe, clock, logger, settings };
  const webhookSecret = "whsec_test_billing";
  return {
    db,
    fake,
    stripe,
    clock,
    settings,
    notices,
    deps,
    webhookSecret,
    async deliver(event, target) {
      const { payload, header } = signStripeEvent(event, webhookSecret);
      const verified = stripe.webhooks.constructEvent(payload, header, webhookSecret);
      const handler = stripeEventHandlers[verified.type];
      if (!handler) throw new Error(`no handler for ${verified.type}`);
      const deps = { clock, logger, settings, stripe };
      if (target) return handler({ ...deps, db: target }, verified);
      return db.$transaction((tx) => handler({ ...deps, db: tx }, verified));
    },
    async close() {
      await notices.idle();
      await fake.close();
      await db.$disconnect();
    },
  };
}

/**
 * A real app (routes, webhooks, guard) whose Stripe is a local fake: `createTestApp` with the
 * STRIPE_* settings pointing at it and a Stripe webhook secret the test owns.
 */
export interface BillingTestApp {
  testApp: TestApp;
  fake: FakeStripeServer;
  clock: ManualClock;
  stripeWebhookSecret: string;
  clerkWebhookSecret: string;
  /** Signs `event` with the SDK's test helper and posts it to `/webhooks/stripe`. */
  postStripeEvent(event: Stripe.Event): Promise<request.Response>;
  /** Signs a Clerk (Svix) event and posts it to `/webhooks/clerk`. */
  postClerkEvent(type: string, data: Record<string, unknown>): Promise<request.Response>;
  /** The Stripe events the fake emitted for one subscription, in order. */
  eventsFor(subscriptionId: string): Stripe.Event[];
  /**
   * A second instance of the API on the same database, clock, fake Stripe and webhook secrets
   * (as two deployed instances), with `env` added; the caller closes it.
   */
  anotherInstance(env?: Record<string, string>): TestApp;
  close(): Promise<void>;
}

export async function createBillingTestApp(
  options: { env?: Record<string, string> } = {},
): Promise<BillingTestApp> {
  const fake = await FakeStripeServer.start();
  fake.addPrice({ id: "price_test_pro", unitAmount: 1900 });
  fake.addPrice({ id: "price_test_business", unitAmount: 4900 });
  const clock = new ManualClock(new Date());
  fake.setNow(() => clock.now());
  const stripeWebhookSecret = newStripeSecret();
  const clerkWebhookSecret = newSvixSecret();
  const settings = fake.clientSettings();
  const env = {
    STRIPE_SECRET_KEY: settings.secretKey,
    STRIPE_API_HOST: settings.host,
    STRIPE_API_PORT: String(settings.port),
    STRIPE_API_PROTOCOL: settings.protocol,
    STRIPE_WEBHOOK_SECRET: stripeWebhookSecret,
    CLERK_WEBHOOK_SECRET: clerkWebhookSecret,
    ...options.env,
  };
  const testApp = createTestApp({ clock, env });
  return {
    testApp,
    fake,
    clock,
    stripeWebhookSecret,
    clerkWebhookSecret,
    postStripeEvent(event) {
      const body = JSON.stringify(event);
      return request(testApp.app)
        .post("/webhooks/stripe")
        .set(stripeHeaders(stripeWebhookSecret, body))
        .send(body);
    },
    postClerkEvent(type, data) {
      const body = JSON.stringify({
        type,
        object: "event",
        timestamp: clock.now().getTime(),
        data,
      });
      return request(testApp.app)
        .post("/webhooks/clerk")
        .set(svixHeaders(clerkWebhookSecret, `msg_${uniqueSuffix()}`, body))
        .send(body);
    },
    anotherInstance(extra = {}) {
      return createTestApp({ clock, env: { ...env, ...extra } });
    },
    eventsFor(subscriptionId) {
      return fake.events.filter(
        (event) => (event.data.object as unknown as { id: string }).id === subscriptionId,
      );
    },
    async close() {
      await testApp.ctx.notices.idle();
      await testApp.close();
      await fake.close();
    },
  };
}

/**
 * Registers the calling file's hooks: a billing test app started before its tests (handed to
 * `use`, since jest hooks cannot return it) and closed after them.
 */
export function useBillingTestApp(
  use: (app: BillingTestApp) => void,
  options: { env?: Record<string, string> } = {},
): void {
  let app: BillingTestApp | undefined;
  beforeAll(async () => {
    app = await createBillingTestApp(options);
    use(app);
  });
  afterAll(() => app?.close());
}
