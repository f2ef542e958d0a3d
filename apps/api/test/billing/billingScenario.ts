import { uniqueSuffix } from "@zigznote/database/testing";
import type Stripe from "stripe";
import request from "supertest";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { TestSmtpServer, type ReceivedMail } from "../support/smtpServer";

/**
 * A billing test's world: the real app (routes, signed webhooks, outbox, jobs' functions) on the
 * test database, Stripe replaced by the local server speaking its API, and notices e-mailed over
 * SMTP to a real SMTP server in the test process, read back with mailparser.
 */
export interface BillingWorld {
  b: BillingTestApp;
  smtp: TestSmtpServer;
  close(): Promise<void>;
}

export const APP_URL = "https://app.zigznote.test";
export const CARD_UPDATE_PAGE = `${APP_URL}/settings/billing?flow=payment_method_update`;
export const FROM = "zigznote <billing@zigznote.test>";

export async function startBillingWorld(env: Record<string, string> = {}): Promise<BillingWorld> {
  const smtp = await TestSmtpServer.start();
  const b = await createBillingTestApp({
    env: { EMAIL_TRANSPORT: "smtp", SMTP_URL: smtp.url(), EMAIL_FROM: FROM, APP_URL, ...env },
  });
  return {
    b,
    smtp,
    async close() {
      await b.testApp.ctx.webhooks.idle();
      await b.close();
      await smtp.close();
    },
  };
}

/**
 * Starts one billing world for the calling test file (before its tests, closed after them) and
 * hands back readers of it: the world, its billing app, a supertest agent and the database.
 */
export function useBillingWorld(env: Record<string, string> = {}): {
  world: () => BillingWorld;
  b: () => BillingTestApp;
  api: () => ReturnType<typeof request>;
  db: () => BillingTestApp["testApp"]["ctx"]["db"];
} {
  let current: BillingWorld | undefined;
  beforeAll(async () => {
    current = await startBillingWorld(env);
  });
  afterAll(() => current?.close());
  const world = () => current!;
  const b = () => world().b;
  return { world, b, api: () => request(b().testApp.app), db: () => b().testApp.ctx.db };
}

/** A meeting's create body, with a Zoom link of its own. */
export const meetingBody = () => ({
  title: "Weekly",
  meetingUrl: `https://zoom.us/j/${Math.floor(1e10 + Math.random() * 8e10)}`,
});

/** Waits until what the deliveries queued after their commits has been sent. */
export async function settle(b: BillingTestApp): Promise<void> {
  await b.testApp.ctx.webhooks.idle();
  await b.testApp.ctx.notices.idle();
}

/** Posts each event, signed, and expects 200 for each. */
export async function deliver(b: BillingTestApp, ...events: Stripe.Event[]): Promise<void> {
  for (const event of events) {
    const response = await b.postStripeEvent(event);
    if (response.status !== 200) {
      throw new Error(
        `${event.type} answered ${response.status}: ${JSON.stringify(response.body)}`,
      );
    }
  }
  await settle(b);
}

export interface SubscribedOrganization {
  admin: AuthenticatedCaller;
  organizationId: string;
  stripeSubscriptionId: string;
  customerId: string;
  adminEmail: string;
  /** The customer's billing contact, as Stripe told us (`customer.updated`). */
  billingEmail: string;
  name: string;
}

/**
 * An organization with one admin on the pro plan through `POST /billing/subscription`, Stripe's
 * events of it delivered, and a billing e-mail of its own on the customer.
 */
export async function subscribedOrganization(b: BillingTestApp): Promise<SubscribedOrganization> {
  const admin = await authHeaderFor(b.testApp, { role: "admin" });
  const subscribed = await request(b.testApp.app)
    .post("/api/v1/billing/subscription")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  if (subscribed.status !== 200) throw new Error(`subscribe answered ${subscribed.status}`);
  const stripeSubscriptionId = subscribed.body.data.stripeSubscriptionId as string;
  await deliver(b, ...b.eventsFor(stripeSubscriptionId));
  const db = b.testApp.ctx.db;
  const organization = await db.organization.findUniqueOrThrow({
    where: { id: admin.organizationId },
  });
  const customerId = organization.stripeCustomerId!;
  const billingEmail = `ap-${uniqueSuffix()}@customer.test`;
  const customer = b.fake.customers.get(customerId)!;
  customer.email = billingEmail;
  await deliver(b, b.fake.buildEvent("customer.updated", customer));
  const user = await db.user.findUniqueOrThrow({ where: { id: admin.userId } });
  return {
    admin,
    organizationId: admin.organizationId,
    stripeSubscriptionId,
    customerId,
    adminEmail: user.email!,
    billingEmail,
    name: organization.name,
  };
}

/** Messages delivered to `address`, oldest first. */
export function mailsTo(smtp: TestSmtpServer, address: string): ReceivedMail[] {
  return smtp.to(address);
}

/** Messages to `address` whose subject contains `fragment`. */
export function mailsAbout(smtp: TestSmtpServer, address: string, fragment: string) {
  return smtp.to(address).filter((mail) => (mail.parsed.subject ?? "").includes(fragment));
}

/** A date as e-mails show it: "6 December 2026 at 09:50 UTC". */
export function mailDate(at: Date | number): string {
  return `${new Intl.DateTimeFormat("en-GB", {
    dateStyle: "long",
    timeStyle: "short",
    timeZone: "UTC",
  }).format(new Date(at))} UTC`;
}

export const DAY_MS = 24 * 60 * 60 * 1000;
