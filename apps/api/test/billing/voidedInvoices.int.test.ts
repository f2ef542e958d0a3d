import type Stripe from "stripe";
import { suspendExpiredGracePeriods } from "../../src/billing";
import { authHeaderFor } from "../support/auth";
import {
  DAY_MS,
  deliver,
  mailsAbout,
  settle,
  subscribedOrganization,
  type SubscribedOrganization,
  useBillingWorld,
} from "./billingScenario";

/**
 * The audit's defect: a renewal's payment fails (past_due, grace period, dunning), support voids
 * the invoice in Stripe (`invoice.voided`, then Stripe's `customer.subscription.updated` saying
 * active), and nothing is owed; the organization stayed past_due and the hourly job suspended it
 * at the end of the grace period. A voided invoice's facts now stop counting. Through
 * `POST /webhooks/stripe` (events signed with the real SDK), the write guard, the suspension job
 * and the outbox (e-mails over SMTP), against PostgreSQL; Stripe is the local fake.
 */

const { world, b, api, db } = useBillingWorld();

const HOUR_MS = 60 * 60 * 1000;

async function standing(org: SubscribedOrganization) {
  const response = await api().get("/api/v1/billing/subscription").set(org.admin.headers);
  expect(response.status).toBe(200);
  const { status, graceEndsAt, paymentRetryCount } = response.body.data as {
    status: string;
    graceEndsAt: string | null;
    paymentRetryCount: number;
  };
  return { status, graceEndsAt, paymentRetryCount };
}

/** The hourly job, at the test clock's time; the ids it suspended. */
function runSuspensionJob(): Promise<string[]> {
  const { ctx } = b().testApp;
  return suspendExpiredGracePeriods({ db: ctx.db, notices: ctx.notices }, { now: b().clock.now() });
}

/** Status of a write through the billing guard (creating an API key), with a fresh session. */
async function writeStatus(org: SubscribedOrganization): Promise<number> {
  const caller = await authHeaderFor(b().testApp, { organizationId: org.organizationId });
  const response = await api()
    .post("/api/v1/api-keys")
    .set(caller.headers)
    .send({ name: "probe", scopes: ["meetings:read"] });
  return response.status;
}

/** A renewal whose payment fails: Stripe's `invoice.payment_failed` and past_due update. */
function failedRenewal(org: SubscribedOrganization) {
  const [failed, pastDue] = b().fake.failRenewal(org.stripeSubscriptionId) as [
    Stripe.Event,
    Stripe.Event,
  ];
  const invoiceId = (failed.data.object as Stripe.Invoice).id;
  return { failed, pastDue, invoiceId };
}

function noticeCount(org: SubscribedOrganization, type: string): Promise<number> {
  return db().notification.count({ where: { organizationId: org.organizationId, type } });
}

const graceEndOf = (event: Stripe.Event) =>
  new Date(event.created * 1000 + 7 * DAY_MS).toISOString();

describe("a voided invoice is owed no more (invoice.voided)", () => {
  it("the audit's scenario: the failed invoice voided during the grace period leaves the organization active, never suspended, with no further dunning", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const renewal = failedRenewal(org);
    await deliver(b(), renewal.failed, renewal.pastDue);
    expect(await standing(org)).toEqual({
      status: "past_due",
      graceEndsAt: graceEndOf(renewal.failed),
      paymentRetryCount: 1,
    });
    const dunningMails = mailsAbout(world().smtp, org.adminEmail, "failed for").length;
    expect(dunningMails).toBe(1);

    // Support voids the invoice in Stripe's dashboard: invoice.voided, then active.
    b().clock.advance(2 * HOUR_MS);
    await deliver(b(), ...b().fake.voidInvoice(renewal.invoiceId));
    expect(await standing(org)).toEqual({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });

    // The end of the grace period passes and the hourly job runs: nothing to suspend.
    b().clock.advance(8 * DAY_MS);
    await runSuspensionJob();
    await settle(b());
    expect(await standing(org)).toMatchObject({ status: "active" });
    expect(await writeStatus(org)).toBe(201);
    expect(await noticeCount(org, "billing.suspended")).toBe(0);
    expect(mailsAbout(world().smtp, org.adminEmail, "failed for")).toHaveLength(dunningMails);
    expect(mailsAbout(world().smtp, org.adminEmail, "Final notice")).toHaveLength(0);
  });

  it("lifts a suspension due to the voided invoice alone, with an 'access restored' e-mail saying why", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const renewal = failedRenewal(org);
    await deliver(b(), renewal.failed, renewal.pastDue);
    b().clock.advance(8 * DAY_MS);
    await runSuspensionJob();
    await settle(b());
    expect(await standing(org)).toMatchObject({ status: "suspended" });
    expect(await writeStatus(org)).toBe(402);

    b().clock.advance(HOUR_MS);
    const [voided, active] = b().fake.voidInvoice(renewal.invoiceId) as [
      Stripe.Event,
      Stripe.Event,
    ];
    expect(active.type).toBe("customer.subscription.updated");
    await deliver(b(), voided, active);
    expect(await standing(org)).toEqual({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
    expect(await writeStatus(org)).toBe(201);
    const [restored] = mailsAbout(world().smtp, org.adminEmail, "Access restored");
    expect(restored?.parsed.text).toContain("was voided, so nothing is owed on it");
    // Redelivered: nothing new.
    expect((await b().postStripeEvent(voided)).body).toEqual({ received: true, duplicate: true });
    await settle(b());
    expect(mailsAbout(world().smtp, org.adminEmail, "Access restored")).toHaveLength(1);
  });

  it("keeps another invoice's failure outstanding, with its own grace period and suspension date", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const first = failedRenewal(org);
    await deliver(b(), first.failed, first.pastDue);
    b().clock.advance(2 * DAY_MS);
    const second = failedRenewal(org);
    await deliver(b(), second.failed, second.pastDue);
    expect(await standing(org)).toMatchObject({
      graceEndsAt: graceEndOf(first.failed),
      paymentRetryCount: 2,
    });

    // The first invoice is voided; the subscription's latest invoice (the second) is still owed.
    b().clock.advance(HOUR_MS);
    const events = b().fake.voidInvoice(first.invoiceId);
    expect(events.map((event) => event.type)).toEqual(["invoice.voided"]);
    await deliver(b(), ...events);
    expect(await standing(org)).toEqual({
      status: "past_due",
      graceEndsAt: graceEndOf(second.failed),
      paymentRetryCount: 1,
    });

    // The first invoice's grace end passes: not suspended; the second's: suspended.
    b().clock.set(new Date(first.failed.created * 1000 + 7 * DAY_MS + HOUR_MS));
    await runSuspensionJob();
    expect(await standing(org)).toMatchObject({ status: "past_due" });
    expect(await writeStatus(org)).toBe(201);
    b().clock.set(new Date(second.failed.created * 1000 + 7 * DAY_MS + HOUR_MS));
    await runSuspensionJob();
    await settle(b());
    expect(await standing(org)).toMatchObject({ status: "suspended" });
    expect(await writeStatus(org)).toBe(402);
  });

  it("takes effect once and ends active whatever the arrival: the void before its failure, redelivered, and all at once", async () => {
    // Void first, then Stripe's earlier events, each twice.
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const renewal = failedRenewal(org);
    b().clock.advance(HOUR_MS);
    const [voided, active] = b().fake.voidInvoice(renewal.invoiceId) as [
      Stripe.Event,
      Stripe.Event,
    ];
    for (const event of [voided, active, renewal.pastDue, renewal.failed]) {
      await deliver(b(), event);
      expect((await b().postStripeEvent(event)).body).toEqual({ received: true, duplicate: true });
    }
    expect(await standing(org)).toEqual({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
    expect(await noticeCount(org, "billing.payment_failed")).toBe(0);
    b().clock.advance(8 * DAY_MS);
    await runSuspensionJob();
    expect(await standing(org)).toMatchObject({ status: "active" });

    // Another organization: the four events, each delivered three times, all at once.
    const other = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const otherRenewal = failedRenewal(other);
    b().clock.advance(HOUR_MS);
    const otherEvents = [
      otherRenewal.failed,
      otherRenewal.pastDue,
      ...b().fake.voidInvoice(otherRenewal.invoiceId),
    ];
    const answers = await Promise.all(
      [...otherEvents, ...otherEvents, ...otherEvents].map((event) => b().postStripeEvent(event)),
    );
    expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    expect(answers.filter((answer) => answer.body.duplicate !== true)).toHaveLength(4);
    await settle(b());
    expect(await standing(other)).toEqual({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
    const row = await db().subscription.findUniqueOrThrow({
      where: { stripeSubscriptionId: other.stripeSubscriptionId },
    });
    expect(row.voidedInvoiceIds).toEqual([otherRenewal.invoiceId]);
    expect(row.outstandingFailuresAt).toEqual([]);
    expect(row.outstandingPastDueAt).toEqual([]);
  });

  it("skips the voided invoice's dunning notice still waiting to be sent", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const renewal = failedRenewal(org);
    // The relay is down when the failure is recorded: its notices wait for a retry.
    world().smtp.failNext({ code: 421, times: 2 });
    await deliver(b(), renewal.failed, renewal.pastDue);
    b().clock.advance(HOUR_MS);
    await deliver(b(), ...b().fake.voidInvoice(renewal.invoiceId));
    await b().testApp.ctx.notices.deliverNow(new Date(b().clock.now().getTime() + DAY_MS));

    expect(mailsAbout(world().smtp, org.adminEmail, "failed for")).toHaveLength(0);
    const rows = await db().notification.findMany({
      where: { organizationId: org.organizationId, type: "billing.payment_failed" },
    });
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.status).toBe("skipped");
      expect(row.lastError).toBe("the invoice was voided before the notice went out");
    }
  });
});

describe("an invoice marked uncollectible is still owed (invoice.marked_uncollectible)", () => {
  it("keeps the grace period and the suspension; paying the invoice restores access, and so would voiding it", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const renewal = failedRenewal(org);
    await deliver(b(), renewal.failed, renewal.pastDue);
    b().clock.advance(HOUR_MS);
    await deliver(b(), b().fake.markUncollectible(renewal.invoiceId));
    expect(await standing(org)).toEqual({
      status: "past_due",
      graceEndsAt: graceEndOf(renewal.failed),
      paymentRetryCount: 1,
    });
    b().clock.advance(8 * DAY_MS);
    await runSuspensionJob();
    expect(await writeStatus(org)).toBe(402);

    // Stripe still takes a payment on an uncollectible invoice.
    b().clock.advance(HOUR_MS);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, {
        invoiceId: renewal.invoiceId,
      }),
    );
    expect(await standing(org)).toEqual({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
    expect(await writeStatus(org)).toBe(201);

    // Another one, voided after being marked uncollectible: owed no more.
    const other = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const otherRenewal = failedRenewal(other);
    await deliver(b(), otherRenewal.failed, otherRenewal.pastDue);
    await deliver(b(), b().fake.markUncollectible(otherRenewal.invoiceId));
    b().clock.advance(8 * DAY_MS);
    await runSuspensionJob();
    expect(await writeStatus(other)).toBe(402);
    await deliver(b(), ...b().fake.voidInvoice(otherRenewal.invoiceId));
    expect(await standing(other)).toMatchObject({ status: "active", graceEndsAt: null });
    expect(await writeStatus(other)).toBe(201);
  });
});
