import { authHeaderFor, signClerkToken } from "../support/auth";
import { cardPaymentMethodObject } from "../support/fakes/stripeObjects";
import {
  deliver,
  subscribedOrganization,
  type SubscribedOrganization,
  useBillingWorld,
} from "./billingScenario";

const { b, api } = useBillingWorld();
type Json = Record<string, unknown>;

async function customerOf(org: SubscribedOrganization) {
  const response = await api().get("/api/v1/billing/subscription").set(org.admin.headers);
  expect(response.status).toBe(200);
  return response.body.customer as {
    billingEmail: string | null;
    address: Json | null;
    taxIds: Json[];
    paymentMethod: Json | null;
  };
}

/** Stripe's event about `object` as changed, stamped `created`. */
function eventAt(type: string, object: Json, created: number) {
  return b().fake.buildEvent(type, structuredClone(object), { created });
}

describe("the card on file (payment_method.*, customer.updated, subscription default)", () => {
  it("keeps the default card's brand, last 4 digits and expiry, whatever order the events arrive in", async () => {
    const org = await subscribedOrganization(b());
    const { paymentMethod, event: attached } = b().fake.attachCard(org.customerId, {
      brand: "mastercard",
      last4: "4444",
      expMonth: 3,
      expYear: 2031,
    });
    b().clock.advance(1_000);
    const madeDefault = b().fake.setCustomerDefault(org.customerId, paymentMethod.id as string);
    // The default is named before the card's own event arrives.
    await deliver(b(), madeDefault);
    expect((await customerOf(org)).paymentMethod).toBeNull();
    await deliver(b(), attached, attached);
    expect((await customerOf(org)).paymentMethod).toEqual({
      id: paymentMethod.id,
      type: "card",
      brand: "mastercard",
      last4: "4444",
      expMonth: 3,
      expYear: 2031,
      autoUpdatedAt: null,
    });

    // Two updates of the card; the newer arrives first and the older changes nothing.
    const card = paymentMethod.card as Json;
    const older = eventAt(
      "payment_method.updated",
      { ...paymentMethod, card: { ...card, exp_month: 4, exp_year: 2032 } },
      madeDefault.created + 10,
    );
    const newer = eventAt(
      "payment_method.updated",
      { ...paymentMethod, card: { ...card, exp_month: 5, exp_year: 2033 } },
      madeDefault.created + 20,
    );
    await deliver(b(), newer, older);
    expect((await customerOf(org)).paymentMethod).toMatchObject({ expMonth: 5, expYear: 2033 });

    // The card updater renews it: a new expiry from the bank.
    b().clock.advance(60_000);
    const renewed = b().fake.updateCardAutomatically(paymentMethod.id as string, {
      expMonth: 3,
      expYear: 2035,
    });
    await deliver(b(), renewed);
    expect((await customerOf(org)).paymentMethod).toMatchObject({
      last4: "4444",
      expMonth: 3,
      expYear: 2035,
      autoUpdatedAt: new Date(renewed.created * 1000).toISOString(),
    });
  });

  it("prefers the card the subscription names, falls back to the customer's when it is detached, and a late attach does not revive a detached card", async () => {
    const org = await subscribedOrganization(b());
    const first = b().fake.attachCard(org.customerId, {
      last4: "1111",
      expMonth: 1,
      expYear: 2030,
    });
    await deliver(
      b(),
      first.event,
      b().fake.setCustomerDefault(org.customerId, first.paymentMethod.id as string),
    );
    b().clock.advance(1_000);
    const second = b().fake.attachCard(org.customerId, {
      brand: "amex",
      last4: "0005",
      expMonth: 2,
      expYear: 2031,
    });
    b().clock.advance(1_000);
    await deliver(
      b(),
      second.event,
      b().fake.setSubscriptionDefault(org.stripeSubscriptionId, second.paymentMethod.id as string),
    );
    expect((await customerOf(org)).paymentMethod).toMatchObject({ brand: "amex", last4: "0005" });

    b().clock.advance(1_000);
    const detached = b().fake.detachPaymentMethod(second.paymentMethod.id as string);
    await deliver(b(), detached);
    expect((await customerOf(org)).paymentMethod).toMatchObject({ brand: "visa", last4: "1111" });
    // The attach event delivered again late changes nothing: a detached card is gone for good.
    await deliver(
      b(),
      eventAt("payment_method.attached", second.paymentMethod, detached.created + 5),
    );
    expect((await customerOf(org)).paymentMethod).toMatchObject({ last4: "1111" });
  });

  it("ignores the payment method of a customer that is not ours (200, nothing stored)", async () => {
    const created = Math.floor(b().clock.now().getTime() / 1000);
    const foreign = cardPaymentMethodObject({
      id: `pm_foreign_${created}`,
      customer: "cus_not_ours",
      brand: "visa",
      last4: "4242",
      expMonth: 1,
      expYear: 2030,
      created,
    });
    const response = await b().postStripeEvent(
      eventAt("payment_method.attached", foreign, created),
    );
    expect(response.status).toBe(200);
    expect(
      await b().testApp.ctx.db.customerPaymentMethod.count({ where: { id: foreign.id as string } }),
    ).toBe(0);
  });
});

describe("the customer's address and tax ids (customer.updated, customer.tax_id.*)", () => {
  it("shows the address Stripe last reported, ordered by created", async () => {
    const org = await subscribedOrganization(b());
    const customer = b().fake.customers.get(org.customerId)!;
    const at = Math.floor(b().clock.now().getTime() / 1000) + 10;
    const moved = eventAt(
      "customer.updated",
      {
        ...customer,
        address: {
          city: "Lyon",
          country: "FR",
          line1: "2 quai",
          line2: null,
          postal_code: "69002",
          state: null,
        },
      },
      at + 10,
    );
    const old = eventAt(
      "customer.updated",
      {
        ...customer,
        address: {
          city: "Paris",
          country: "FR",
          line1: "1 rue",
          line2: null,
          postal_code: "75001",
          state: null,
        },
      },
      at,
    );
    await deliver(b(), moved, old);
    expect((await customerOf(org)).address).toEqual({
      line1: "2 quai",
      line2: null,
      postalCode: "69002",
      city: "Lyon",
      state: null,
      country: "FR",
    });
    // Removed at Stripe (every field null): none shown.
    await deliver(
      b(),
      eventAt(
        "customer.updated",
        {
          ...customer,
          address: {
            city: null,
            country: null,
            line1: null,
            line2: null,
            postal_code: null,
            state: null,
          },
        },
        at + 20,
      ),
    );
    expect((await customerOf(org)).address).toBeNull();
  });

  it("keeps each tax id as of its newest event; a deleted one stays deleted", async () => {
    const org = await subscribedOrganization(b());
    const vat = b().fake.addTaxId(org.customerId, {
      type: "eu_vat",
      value: "FR40303265045",
      country: "FR",
    });
    const ein = b().fake.addTaxId(org.customerId, {
      type: "us_ein",
      value: "12-3456789",
      country: "US",
    });
    b().clock.advance(1_000);
    const verified = b().fake.verifyTaxId(vat.taxId.id as string, "verified");
    // Verified arrives before created: the older created changes nothing.
    await deliver(b(), verified, vat.event, ein.event);
    expect((await customerOf(org)).taxIds).toEqual([
      {
        id: vat.taxId.id,
        type: "eu_vat",
        value: "FR40303265045",
        country: "FR",
        verificationStatus: "verified",
      },
      {
        id: ein.taxId.id,
        type: "us_ein",
        value: "12-3456789",
        country: "US",
        verificationStatus: "unavailable",
      },
    ]);
    b().clock.advance(1_000);
    const deleted = b().fake.deleteTaxId(ein.taxId.id as string);
    await deliver(b(), deleted, eventAt("customer.tax_id.updated", ein.taxId, deleted.created + 1));
    expect(((await customerOf(org)).taxIds as { id: string }[]).map((taxId) => taxId.id)).toEqual([
      vat.taxId.id,
    ]);
  });
});

describe("GET /api/v1/admin/organizations/:id (the console's organization page)", () => {
  it("shows the card on file, the address, the tax ids and the payments waiting for confirmation", async () => {
    const org = await subscribedOrganization(b());
    const { paymentMethod, event } = b().fake.attachCard(org.customerId, {
      brand: "visa",
      last4: "4242",
      expMonth: 8,
      expYear: 2030,
    });
    b().clock.advance(1_000);
    await deliver(
      b(),
      event,
      b().fake.setSubscriptionDefault(org.stripeSubscriptionId, paymentMethod.id as string),
      b().fake.setCustomerAddress(org.customerId, {
        line1: "1 Main St",
        city: "Oslo",
        country: "NO",
      }),
      b().fake.addTaxId(org.customerId, { type: "no_vat", value: "123456789MVA", country: "NO" })
        .event,
    );
    b().clock.advance(60_000);
    const actionRequired = b().fake.invoiceEvent(
      "invoice.payment_action_required",
      org.stripeSubscriptionId,
    );
    await deliver(b(), actionRequired);

    const caller = await authHeaderFor(b().testApp);
    const operator = {
      Authorization: `Bearer ${signClerkToken({
        userId: caller.userClerkId,
        orgId: caller.orgClerkId,
        claims: { metadata: { platformAdmin: true } },
      })}`,
    };
    const detail = await api()
      .get(`/api/v1/admin/organizations/${org.organizationId}`)
      .set(operator);
    expect(detail.status).toBe(200);
    const invoice = actionRequired.data.object as unknown as {
      id: string;
      hosted_invoice_url: string;
    };
    expect(detail.body.billing).toEqual({
      billingEmail: org.billingEmail,
      address: {
        line1: "1 Main St",
        line2: null,
        postalCode: null,
        city: "Oslo",
        state: null,
        country: "NO",
      },
      taxIds: [
        {
          id: expect.stringMatching(/^txi_/),
          type: "no_vat",
          value: "123456789MVA",
          country: "NO",
          verificationStatus: "unavailable",
        },
      ],
      paymentMethod: {
        id: paymentMethod.id,
        type: "card",
        brand: "visa",
        last4: "4242",
        expMonth: 8,
        expYear: 2030,
        autoUpdatedAt: null,
      },
      pendingConfirmations: [
        {
          invoiceId: invoice.id,
          amountDue: 1900,
          currency: "usd",
          hostedInvoiceUrl: invoice.hosted_invoice_url,
          since: new Date(actionRequired.created * 1000).toISOString(),
        },
      ],
    });
    expect(detail.body.paymentTimeline).toContainEqual({
      at: new Date(actionRequired.created * 1000).toISOString(),
      kind: "confirmation_requested",
      detail: `invoice ${invoice.id} waits for the customer's authentication`,
    });
    // Members see the same details (billing:read) in GET /billing/subscription.
    const customer = await customerOf(org);
    expect(customer.paymentMethod).toEqual(detail.body.billing.paymentMethod);
  });
});
