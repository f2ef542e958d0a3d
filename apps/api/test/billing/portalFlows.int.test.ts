import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import { APP_URL, subscribedOrganization, useBillingWorld } from "./billingScenario";

const { b, api } = useBillingWorld();
const RETURN_URL = `${APP_URL}/settings/billing`;

/** The portal session requests the fake received for this customer. */
const portalRequests = (customerId: string) =>
  b()
    .fake.requestsTo("POST", "/v1/billing_portal/sessions")
    .filter((r) => r.params.customer === customerId);

describe("POST /api/v1/billing/portal", () => {
  it("opens the front page without a flow, and each flow's page with Stripe's flow_data", async () => {
    const org = await subscribedOrganization(b());
    const front = await api().post("/api/v1/billing/portal").set(org.admin.headers);
    expect(front.status).toBe(200);
    expect(front.body.url).toMatch(/^https:\/\/billing\.stripe\.test\/p\/session\/bps_/);
    expect(
      (await api().post("/api/v1/billing/portal").set(org.admin.headers).send({})).status,
    ).toBe(200);

    for (const flow of ["payment_method_update", "subscription_cancel", "subscription_update"]) {
      const response = await api()
        .post("/api/v1/billing/portal")
        .set(org.admin.headers)
        .send({ flow });
      expect(response.status).toBe(200);
    }
    const requests = portalRequests(org.customerId);
    expect(requests.map((r) => r.params)).toEqual([
      { customer: org.customerId, return_url: RETURN_URL },
      { customer: org.customerId, return_url: RETURN_URL },
      {
        customer: org.customerId,
        return_url: RETURN_URL,
        flow_data: {
          type: "payment_method_update",
          after_completion: { type: "redirect", redirect: { return_url: RETURN_URL } },
        },
      },
      {
        customer: org.customerId,
        return_url: RETURN_URL,
        flow_data: {
          type: "subscription_cancel",
          subscription_cancel: { subscription: org.stripeSubscriptionId },
          after_completion: { type: "redirect", redirect: { return_url: RETURN_URL } },
        },
      },
      {
        customer: org.customerId,
        return_url: RETURN_URL,
        flow_data: {
          type: "subscription_update",
          subscription_update: { subscription: org.stripeSubscriptionId },
          after_completion: { type: "redirect", redirect: { return_url: RETURN_URL } },
        },
      },
    ]);
    // Stripe accepted each and answered the session at that flow.
    expect(
      requests.map((r) => (r.response as { flow: { type: string } | null }).flow?.type),
    ).toEqual([
      undefined,
      undefined,
      "payment_method_update",
      "subscription_cancel",
      "subscription_update",
    ]);
  });

  it("answers 400 for an unknown flow or any unknown field, and calls nothing", async () => {
    const org = await subscribedOrganization(b());
    const before = portalRequests(org.customerId).length;
    const unknownFlow = await api()
      .post("/api/v1/billing/portal")
      .set(org.admin.headers)
      .send({ flow: "subscription_pause" });
    expect(unknownFlow.status).toBe(400);
    expect(unknownFlow.body.error.code).toBe("VALIDATION_ERROR");
    expect(unknownFlow.body.error.details.fields[0].path).toBe("flow");
    const unknownField = await api()
      .post("/api/v1/billing/portal")
      .set(org.admin.headers)
      .send({ flow: "payment_method_update", returnUrl: "https://evil.test" });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.error.code).toBe("VALIDATION_ERROR");
    expect(JSON.stringify(unknownField.body.error.details)).toContain("returnUrl");
    const notJson = await api()
      .post("/api/v1/billing/portal")
      .set(org.admin.headers)
      .set("content-type", "application/json")
      .send("{flow");
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.code).toBe("INVALID_JSON");
    expect(portalRequests(org.customerId).length).toBe(before);
  });

  it("needs a live subscription to cancel or change (404), and refuses to cancel one already ending (409)", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    for (const flow of ["subscription_cancel", "subscription_update"]) {
      const response = await api().post("/api/v1/billing/portal").set(admin.headers).send({ flow });
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe("NO_ACTIVE_SUBSCRIPTION");
    }
    // The card form needs no subscription.
    expect(
      (
        await api()
          .post("/api/v1/billing/portal")
          .set(admin.headers)
          .send({ flow: "payment_method_update" })
      ).status,
    ).toBe(200);

    const org = await subscribedOrganization(b());
    const canceled = await api()
      .post("/api/v1/billing/subscription/cancel")
      .set(org.admin.headers)
      .send({ atPeriodEnd: true });
    expect(canceled.status).toBe(200);
    const again = await api()
      .post("/api/v1/billing/portal")
      .set(org.admin.headers)
      .send({ flow: "subscription_cancel" });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("CONFLICT");
  });

  it("is for the organization's admins' sessions: members and API keys get 403", async () => {
    const org = await subscribedOrganization(b());
    const member = await authHeaderFor(b().testApp, {
      role: "member",
      organizationId: org.organizationId,
    });
    const asMember = await api()
      .post("/api/v1/billing/portal")
      .set(member.headers)
      .send({ flow: "payment_method_update" });
    expect(asMember.status).toBe(403);
    expect(asMember.body.error.code).toBe("ADMIN_REQUIRED");
    const key = await apiKeyHeaderFor(b().testApp, {
      scopes: ["billing:read", "billing:write"],
      organizationId: org.organizationId,
    });
    const asKey = await api().post("/api/v1/billing/portal").set(key.headers).send({});
    expect(asKey.status).toBe(403);
  });
});
