import { suspendExpiredGracePeriods } from "../../src/billing";
import { authHeaderFor } from "../support/auth";
import {
  CARD_UPDATE_PAGE,
  DAY_MS,
  deliver,
  mailDate,
  mailsAbout,
  mailsTo,
  settle,
  subscribedOrganization,
  type SubscribedOrganization,
  useBillingWorld,
  meetingBody,
} from "./billingScenario";

const { world, b, api, db } = useBillingWorld();

async function currentSubscription(org: SubscribedOrganization) {
  const response = await api().get("/api/v1/billing/subscription").set(org.admin.headers);
  expect(response.status).toBe(200);
  return response.body as {
    data: { status: string; graceEndsAt: string | null; paymentRetryCount: number };
    pendingConfirmations: {
      invoiceId: string;
      amountDue: number;
      currency: string;
      hostedInvoiceUrl: string | null;
      since: string;
    }[];
  };
}

/** The renewal needs the customer's authentication: Stripe's two events for it. */
function renewalNeedsAuthentication(org: SubscribedOrganization, amountDue = 4900) {
  const actionRequired = b().fake.invoiceEvent(
    "invoice.payment_action_required",
    org.stripeSubscriptionId,
    { amountDue },
  );
  const pastDue = b().fake.setSubscriptionStatus(org.stripeSubscriptionId, "past_due");
  const invoice = actionRequired.data.object as unknown as {
    id: string;
    hosted_invoice_url: string;
  };
  return { actionRequired, pastDue, invoice };
}

describe("invoice.payment_action_required", () => {
  it("sends one 'Confirm your payment' e-mail with the hosted page and the card link, and shows the confirmation until the invoice is paid", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const { actionRequired, pastDue, invoice } = renewalNeedsAuthentication(org);
    await deliver(b(), actionRequired, pastDue);
    // Redelivered one after the other and five times at once: nothing new.
    expect((await b().postStripeEvent(actionRequired)).body).toEqual({
      received: true,
      duplicate: true,
    });
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => b().postStripeEvent(actionRequired)),
    );
    expect(concurrent.map((response) => response.status)).toEqual(Array(5).fill(200));
    // Stripe asks again for the same invoice (a new event): still one notice per invoice.
    b().clock.advance(60_000);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.payment_action_required", org.stripeSubscriptionId, {
        invoiceId: invoice.id,
      }),
    );
    await settle(b());

    const requiredAt = new Date(actionRequired.created * 1000);
    const graceEndsAt = new Date(requiredAt.getTime() + 7 * DAY_MS);
    for (const address of [org.adminEmail, org.billingEmail]) {
      const mails = mailsTo(world().smtp, address);
      expect(mails.map((mail) => mail.parsed.subject)).toEqual([
        `Confirm your payment of $49.00 for ${org.name}`,
      ]);
      const [mail] = mails;
      const text = mail!.parsed.text ?? "";
      expect(text).toContain("Confirm your payment");
      expect(text).toContain("Amount: $49.00");
      expect(text).toContain(`Waiting since: ${mailDate(requiredAt)}`);
      expect(text).toContain(`Confirm before: ${mailDate(graceEndsAt)}`);
      expect(text).toContain(`Confirm and pay this invoice: ${invoice.hosted_invoice_url}`);
      expect(text).toContain(`Update your card: ${CARD_UPDATE_PAGE}`);
      expect(mail!.parsed.html).toContain(`href="${invoice.hosted_invoice_url}"`);
      expect(mail!.parsed.html).toContain(`href="${CARD_UPDATE_PAGE}"`);
    }

    let current = await currentSubscription(org);
    expect(current.pendingConfirmations).toEqual([
      {
        invoiceId: invoice.id,
        amountDue: 4900,
        currency: "usd",
        hostedInvoiceUrl: invoice.hosted_invoice_url,
        since: requiredAt.toISOString(),
      },
    ]);
    // The grace period runs as for a failure, without counting a failed attempt.
    expect(current.data).toMatchObject({
      status: "past_due",
      graceEndsAt: graceEndsAt.toISOString(),
      paymentRetryCount: 0,
    });
    // Access is kept during the grace period.
    expect(
      (await api().post("/api/v1/meetings").set(org.admin.headers).send(meetingBody())).status,
    ).toBe(201);

    // The customer confirms: Stripe collects the invoice.
    b().clock.advance(60_000);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, { invoiceId: invoice.id }),
    );
    current = await currentSubscription(org);
    expect(current.pendingConfirmations).toEqual([]);
    expect(current.data).toMatchObject({ status: "active", graceEndsAt: null });
    // Nothing else was sent (no "access restored": access was never lost).
    expect(mailsTo(world().smtp, org.adminEmail)).toHaveLength(1);
  });

  it("suspends when the grace ends unconfirmed, exactly as a failure does, and the payment restores access", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const { actionRequired, invoice } = renewalNeedsAuthentication(org, 1900);
    await deliver(b(), actionRequired);
    const graceEndsAt = actionRequired.created * 1000 + 7 * DAY_MS;

    // The job acts on the whole (worker's) database: only this subscription is looked at here.
    const ours = (
      await db().subscription.findUniqueOrThrow({
        where: { stripeSubscriptionId: org.stripeSubscriptionId },
      })
    ).id;
    b().clock.set(graceEndsAt - 60_000);
    expect(
      await suspendExpiredGracePeriods(b().testApp.ctx, { now: b().clock.now() }),
    ).not.toContain(ours);
    b().clock.set(graceEndsAt + 60_000);
    expect(await suspendExpiredGracePeriods(b().testApp.ctx, { now: b().clock.now() })).toContain(
      ours,
    );
    await settle(b());
    const refused = await api().post("/api/v1/meetings").set(org.admin.headers).send(meetingBody());
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe("SUBSCRIPTION_SUSPENDED");
    // Still waiting for the confirmation, which is how the customer gets back in.
    expect((await currentSubscription(org)).pendingConfirmations).toHaveLength(1);
    expect(mailsAbout(world().smtp, org.adminEmail, "is suspended")).toHaveLength(1);

    b().clock.advance(60_000);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, { invoiceId: invoice.id }),
    );
    const current = await currentSubscription(org);
    expect(current.data.status).toBe("active");
    expect(current.pendingConfirmations).toEqual([]);
    expect(mailsAbout(world().smtp, org.adminEmail, "Access restored")).toHaveLength(1);
    expect(
      (await api().post("/api/v1/meetings").set(org.admin.headers).send(meetingBody())).status,
    ).toBe(201);
  });

  it("orders by Stripe's created: a request older than the invoice's payment, arriving after it, shows and sends nothing", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const { actionRequired, invoice } = renewalNeedsAuthentication(org);
    b().clock.advance(5 * 60_000);
    const paid = b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, {
      invoiceId: invoice.id,
    });
    const before = mailsTo(world().smtp, org.adminEmail).length;
    await deliver(b(), paid, actionRequired);

    const current = await currentSubscription(org);
    expect(current.pendingConfirmations).toEqual([]);
    expect(current.data).toMatchObject({ status: "active", graceEndsAt: null });
    expect(mailsTo(world().smtp, org.adminEmail)).toHaveLength(before);
    expect(
      await db().notification.count({
        where: { organizationId: org.organizationId, type: "billing.payment_action_required" },
      }),
    ).toBe(0);
  });

  it("clears the confirmation when the invoice is voided", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const { actionRequired, invoice } = renewalNeedsAuthentication(org);
    await deliver(b(), actionRequired);
    expect((await currentSubscription(org)).pendingConfirmations).toHaveLength(1);
    b().clock.advance(60_000);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.voided", org.stripeSubscriptionId, { invoiceId: invoice.id }),
    );
    expect((await currentSubscription(org)).pendingConfirmations).toEqual([]);
    // A late, older request for the voided invoice does not bring it back.
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.payment_action_required", org.stripeSubscriptionId, {
        invoiceId: invoice.id,
        created: actionRequired.created,
      }),
    );
    expect((await currentSubscription(org)).pendingConfirmations).toEqual([]);
  });

  it("does not send a confirmation request whose invoice was paid before it went out (skipped)", async () => {
    const org = await subscribedOrganization(b());
    b().clock.advance(DAY_MS);
    const { actionRequired, invoice } = renewalNeedsAuthentication(org);
    // The relay is down when the request is recorded.
    world().smtp.failNext({ code: 421, times: 2 });
    await deliver(b(), actionRequired);
    b().clock.advance(60_000);
    await deliver(
      b(),
      b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, { invoiceId: invoice.id }),
    );
    await b().testApp.ctx.notices.deliverNow(new Date(b().clock.now().getTime() + DAY_MS));

    expect(mailsAbout(world().smtp, org.adminEmail, "Confirm your payment")).toHaveLength(0);
    const rows = await db().notification.findMany({
      where: { organizationId: org.organizationId, type: "billing.payment_action_required" },
    });
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.status).toBe("skipped");
      expect(row.lastError).toBe(
        "the payment was confirmed (or the invoice voided) before the notice went out",
      );
    }
  });

  it("refuses a request for a subscription not recorded yet (500, nothing stored) and applies Stripe's retry", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    const checkout = await api()
      .post("/api/v1/billing/checkout")
      .set(admin.headers)
      .send({ planSlug: "pro" });
    expect(checkout.status).toBe(200);
    const sessionId = (checkout.body.url as string).split("/").pop()!;
    const checkoutEvents = b().fake.completeCheckout(sessionId);
    const subscriptionId = b().fake.checkoutSessions.get(sessionId)!.subscription as string;
    b().clock.advance(DAY_MS);
    const actionRequired = b().fake.invoiceEvent("invoice.payment_action_required", subscriptionId);

    const early = await b().postStripeEvent(actionRequired);
    expect(early.status).toBe(500);
    expect(
      await db().paymentConfirmation.count({ where: { organizationId: admin.organizationId } }),
    ).toBe(0);
    await deliver(b(), ...checkoutEvents);
    await deliver(b(), actionRequired);
    const current = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(current.body.pendingConfirmations).toHaveLength(1);
    expect(current.body.data.status).toBe("past_due");
  });
});
