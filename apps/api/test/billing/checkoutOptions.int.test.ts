import type Stripe from "stripe";
import request from "supertest";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import {
  CARD_UPDATE_PAGE,
  DAY_MS,
  deliver,
  mailDate,
  mailsAbout,
  settle,
  startBillingWorld,
  useBillingWorld,
} from "./billingScenario";
import { shuffled } from "../support/shuffled";

const ALL_OPTIONS = {
  STRIPE_AUTOMATIC_TAX: "true",
  STRIPE_TAX_ID_COLLECTION: "true",
  STRIPE_ALLOW_PROMOTION_CODES: "true",
  STRIPE_TRIAL_DAYS: "14",
};

const { world, b, api, db } = useBillingWorld(ALL_OPTIONS);

/** Delivers as Stripe does: a refused event (5xx) comes again after the others. */
async function deliverAsStripe(events: Stripe.Event[]) {
  let pending = events;
  for (let round = 0; round <= events.length && pending.length > 0; round += 1) {
    const retry: Stripe.Event[] = [];
    for (const event of pending) {
      if ((await b().postStripeEvent(event)).status !== 200) retry.push(event);
    }
    pending = retry;
  }
  expect(pending.map((event) => event.type)).toEqual([]);
  await settle(b());
}

async function startCheckout(admin: AuthenticatedCaller) {
  const response = await api()
    .post("/api/v1/billing/checkout")
    .set(admin.headers)
    .send({ planSlug: "pro" });
  expect(response.status).toBe(200);
  const sessionId = (response.body.url as string).split("/").pop()!;
  return sessionId;
}

async function adminEmailOf(admin: AuthenticatedCaller) {
  return (await db().user.findUniqueOrThrow({ where: { id: admin.userId } })).email!;
}

describe("Checkout for businesses (STRIPE_AUTOMATIC_TAX, _TAX_ID_COLLECTION, _ALLOW_PROMOTION_CODES, _TRIAL_DAYS)", () => {
  it("asks Stripe for tax, the billing address, tax ids, promotion codes and a trial that needs no card", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    await startCheckout(admin);
    const [created] = b()
      .fake.requestsTo("POST", "/v1/checkout/sessions")
      .filter((r) => r.params.client_reference_id === admin.organizationId);
    expect(created!.status).toBe(200);
    expect(created!.params).toMatchObject({
      automatic_tax: { enabled: "true" },
      billing_address_collection: "required",
      customer_update: { address: "auto", name: "auto" },
      tax_id_collection: { enabled: "true" },
      allow_promotion_codes: "true",
      payment_method_collection: "if_required",
      subscription_data: {
        metadata: { organizationId: admin.organizationId, planSlug: "pro" },
        trial_period_days: "14",
        trial_settings: { end_behavior: { missing_payment_method: "cancel" } },
      },
    });
  });

  it.each([
    [
      { STRIPE_AUTOMATIC_TAX: "true" },
      {
        automatic_tax: { enabled: "true" },
        billing_address_collection: "required",
        customer_update: { address: "auto" },
      },
    ],
    [
      { STRIPE_TAX_ID_COLLECTION: "true" },
      { tax_id_collection: { enabled: "true" }, customer_update: { name: "auto" } },
    ],
    [{ STRIPE_ALLOW_PROMOTION_CODES: "true" }, { allow_promotion_codes: "true" }],
    [
      { STRIPE_TRIAL_DAYS: "30" },
      {
        payment_method_collection: "if_required",
        subscription_data: expect.objectContaining({ trial_period_days: "30" }),
      },
    ],
  ])("switches each option alone (%j) and Stripe accepts the session", async (env, expected) => {
    const single = await startBillingWorld(env);
    try {
      const admin = await authHeaderFor(single.b.testApp, { role: "admin" });
      const response = await request(single.b.testApp.app)
        .post("/api/v1/billing/checkout")
        .set(admin.headers)
        .send({ planSlug: "pro" });
      expect(response.status).toBe(200);
      const [created] = single.b.fake.requestsTo("POST", "/v1/checkout/sessions");
      expect(created!.params).toMatchObject(expected);
      const optionKeys = [
        "automatic_tax",
        "billing_address_collection",
        "customer_update",
        "tax_id_collection",
        "allow_promotion_codes",
        "payment_method_collection",
      ];
      // Nothing else is switched on.
      expect(
        Object.keys(created!.params)
          .filter((key) => optionKeys.includes(key))
          .sort(),
      ).toEqual(
        Object.keys(expected)
          .filter((key) => optionKeys.includes(key))
          .sort(),
      );
    } finally {
      await single.close();
    }
  });

  it("records the trial, the address and the tax id Checkout collected, in any arrival order", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    const sessionId = await startCheckout(admin);
    const events = b().fake.completeCheckout(sessionId, {
      card: false,
      address: { line1: "Friedrichstraße 68", postal_code: "10117", city: "Berlin", country: "DE" },
      taxId: { type: "eu_vat", value: "DE123456789", country: "DE" },
    });
    expect(events.map((event) => event.type)).toEqual([
      "customer.updated",
      "customer.tax_id.created",
      "customer.subscription.created",
      "checkout.session.completed",
      "invoice.paid",
    ]);
    await deliverAsStripe(shuffled(events, 7));
    // Redelivered, shuffled again: nothing changes.
    const first = await api().get("/api/v1/billing/subscription").set(admin.headers);
    await deliverAsStripe(shuffled(events, 11));
    const second = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(second.body).toEqual(first.body);

    const subscription = b().fake.subscriptions.get(
      b().fake.checkoutSessions.get(sessionId)!.subscription as string,
    )!;
    expect(first.body.data).toMatchObject({
      planSlug: "pro",
      status: "trialing",
      trialEndsAt: new Date(Number(subscription.trial_end) * 1000).toISOString(),
    });
    expect(first.body.customer).toMatchObject({
      address: {
        line1: "Friedrichstraße 68",
        line2: null,
        postalCode: "10117",
        city: "Berlin",
        state: null,
        country: "DE",
      },
      taxIds: [
        {
          id: expect.stringMatching(/^txi_/),
          type: "eu_vat",
          value: "DE123456789",
          country: "DE",
          verificationStatus: "pending",
        },
      ],
      paymentMethod: null,
    });
    const organization = await api().get("/api/v1/organization").set(admin.headers);
    expect(organization.body.plan.slug).toBe("pro");
  });

  it("warns before a trial without a card ends, then the subscription ends with it and the organization is back on free", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    const email = await adminEmailOf(admin);
    const sessionId = await startCheckout(admin);
    await deliverAsStripe(
      b().fake.completeCheckout(sessionId, { card: false, address: { country: "FR" } }),
    );
    const subscriptionId = b().fake.checkoutSessions.get(sessionId)!.subscription as string;
    const trialEnd = Number(b().fake.subscriptions.get(subscriptionId)!.trial_end) * 1000;

    b().clock.set(trialEnd - 3 * DAY_MS);
    const warning = b().fake.trialWillEnd(subscriptionId);
    await deliver(b(), warning);
    await deliver(b(), warning);
    const mails = mailsAbout(world().smtp, email, "trial");
    expect(mails.map((mail) => mail.parsed.subject)).toEqual([
      `Your Pro trial for ${(await db().organization.findUniqueOrThrow({ where: { id: admin.organizationId } })).name} ends on ${new Intl.DateTimeFormat("en-GB", { dateStyle: "long", timeZone: "UTC" }).format(new Date(trialEnd))}`,
    ]);
    const text = mails[0]!.parsed.text ?? "";
    expect(text).toContain(`ends on ${mailDate(trialEnd)}`);
    expect(text).toContain("There is no card on file");
    expect(text).toContain("($19.00 per period)");
    expect(text).toContain("goes back to the free plan");
    expect(text).toContain(`Add a card: ${CARD_UPDATE_PAGE}`);

    // The trial ends without a card: Stripe cancels the subscription (end_behavior cancel).
    b().clock.set(trialEnd + 60_000);
    const ended = b().fake.endTrial(subscriptionId);
    expect(ended.map((event) => event.type)).toEqual(["customer.subscription.deleted"]);
    await deliver(b(), ...ended);
    const current = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(current.body.data).toMatchObject({ status: "canceled", planSlug: "pro" });
    const organization = await api().get("/api/v1/organization").set(admin.headers);
    expect(organization.body.plan.slug).toBe("free");
    expect(organization.body.subscriptionStatus).toBe("canceled");
  });

  it("with a card, the warning names the card and the price, and the trial turns into a paid subscription", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    const email = await adminEmailOf(admin);
    const sessionId = await startCheckout(admin);
    await deliverAsStripe(
      b().fake.completeCheckout(sessionId, {
        card: { brand: "visa", last4: "4242", expMonth: 12, expYear: 2040 },
        address: { country: "US", postal_code: "94103" },
      }),
    );
    const subscriptionId = b().fake.checkoutSessions.get(sessionId)!.subscription as string;
    const trialEnd = Number(b().fake.subscriptions.get(subscriptionId)!.trial_end) * 1000;
    b().clock.set(trialEnd - 3 * DAY_MS);
    await deliver(b(), b().fake.trialWillEnd(subscriptionId));
    const [mail] = mailsAbout(world().smtp, email, "trial");
    expect(mail!.parsed.text).toContain(
      `We will then charge $19.00 to your Visa ending in 4242, and again each period until you cancel.`,
    );
    expect(mail!.parsed.text).toContain("Card: Visa ending in 4242");

    b().clock.set(trialEnd + 60_000);
    await deliver(b(), ...b().fake.endTrial(subscriptionId));
    const current = await api().get("/api/v1/billing/subscription").set(admin.headers);
    expect(current.body.data.status).toBe("active");
    expect(current.body.customer.paymentMethod).toMatchObject({
      brand: "visa",
      last4: "4242",
      expMonth: 12,
      expYear: 2040,
    });
  });
});
