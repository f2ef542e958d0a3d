import { createUser, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { authHeaderFor, signClerkToken } from "../support/auth";
import {
  DAY_MS,
  deliver,
  mailDate,
  mailsTo,
  settle,
  subscribedOrganization,
  type SubscribedOrganization,
  startBillingWorld,
  type BillingWorld,
  useBillingWorld,
  meetingBody,
} from "./billingScenario";

const OPS_INBOX = `ops-${uniqueSuffix()}@zigznote.test`;
const PLATFORM_ADMIN_CLERK_ID = `user_platform_${uniqueSuffix().replace(/[^A-Za-z0-9_]/g, "")}`;

const { world, b, api, db } = useBillingWorld({
  PLATFORM_ADMIN_EMAILS: OPS_INBOX,
  PLATFORM_ADMIN_USER_IDS: PLATFORM_ADMIN_CLERK_ID,
});
let platformAdminEmail: string;
beforeAll(async () => {
  const user = await createUser(world().b.testApp.ctx.db, { clerkId: PLATFORM_ADMIN_CLERK_ID });
  platformAdminEmail = user.email!;
});

/** A renewal paid by card: the charge the customer can dispute. */
async function paidCharge(org: SubscribedOrganization, amountDue = 1900): Promise<string> {
  b().clock.advance(DAY_MS);
  const paid = b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, { amountDue });
  await deliver(b(), paid);
  return b().fake.chargeOf((paid.data.object as unknown as { id: string }).id).id as string;
}

async function operatorHeaders() {
  const caller = await authHeaderFor(b().testApp);
  return {
    Authorization: `Bearer ${signClerkToken({
      userId: caller.userClerkId,
      orgId: caller.orgClerkId,
      claims: { metadata: { platformAdmin: true } },
    })}`,
  };
}

async function disputesOf(organizationId: string) {
  const detail = await api()
    .get(`/api/v1/admin/organizations/${organizationId}`)
    .set(await operatorHeaders());
  expect(detail.status).toBe(200);
  return detail.body.disputes as Record<string, unknown>[];
}

const disputeMailsTo = (address: string) =>
  mailsTo(world().smtp, address).filter((mail) =>
    (mail.parsed.subject ?? "").startsWith("Payment disputed"),
  );

describe("charge.dispute.*", () => {
  it("records the dispute and e-mails the platform admins once when it opens (not the organization)", async () => {
    const org = await subscribedOrganization(b());
    const chargeId = await paidCharge(org);
    b().clock.advance(DAY_MS);
    const dueBy = Math.floor(b().clock.now().getTime() / 1000) + 10 * 86_400;
    const created = b().fake.disputeEvent("charge.dispute.created", chargeId, {
      reason: "subscription_canceled",
      evidenceDueBy: dueBy,
    });
    const chargeReads = () => b().fake.requestsTo("GET", `/v1/charges/${chargeId}`).length;
    await deliver(b(), created);
    expect(chargeReads()).toBe(1);
    // Redelivered, one after the other and five at once: one record, one e-mail, no new read.
    await deliver(b(), created);
    const concurrent = await Promise.all(
      Array.from({ length: 5 }, () => b().postStripeEvent(created)),
    );
    expect(concurrent.map((response) => response.status)).toEqual(Array(5).fill(200));
    await settle(b());
    expect(chargeReads()).toBeLessThanOrEqual(6);

    const dispute = created.data.object as unknown as { id: string };
    expect(await disputesOf(org.organizationId)).toEqual([
      {
        id: dispute.id,
        chargeId,
        amount: 1900,
        currency: "usd",
        reason: "subscription_canceled",
        status: "needs_response",
        isOpen: true,
        evidenceDueBy: new Date(dueBy * 1000).toISOString(),
        openedAt: new Date(created.created * 1000).toISOString(),
        closedAt: null,
      },
    ]);
    for (const address of [OPS_INBOX, platformAdminEmail]) {
      const mails = disputeMailsTo(address);
      expect(mails).toHaveLength(1);
      expect(mails[0]!.parsed.subject).toBe(`Payment disputed: $19.00 by ${org.name}`);
      const text = mails[0]!.parsed.text ?? "";
      expect(text).toContain("Reason: subscription canceled");
      expect(text).toContain(`Evidence due: ${mailDate(dueBy * 1000)}`);
      expect(text).toContain(
        `Open the dispute in Stripe: https://dashboard.stripe.com/test/disputes/${dispute.id}`,
      );
      expect(text).toContain("You receive this because you are a zigznote platform admin.");
    }
    // The organization's admins and billing e-mail are not told by this notice, and their list of
    // notices does not show it (nor the operators' addresses).
    expect(disputeMailsTo(org.adminEmail)).toHaveLength(0);
    expect(disputeMailsTo(org.billingEmail)).toHaveLength(0);
    const listed = await api().get("/api/v1/notices").set(org.admin.headers);
    expect(listed.status).toBe(200);
    expect(JSON.stringify(listed.body)).not.toContain("dispute");
    expect(JSON.stringify(listed.body)).not.toContain(OPS_INBOX);
  });

  it("applies updated and closed by Stripe's created, whatever order they arrive in", async () => {
    const org = await subscribedOrganization(b());
    const chargeId = await paidCharge(org, 4900);
    b().clock.advance(DAY_MS);
    const created = b().fake.disputeEvent("charge.dispute.created", chargeId);
    const disputeId = (created.data.object as unknown as { id: string }).id;
    b().clock.advance(DAY_MS);
    const updated = b().fake.disputeEvent("charge.dispute.updated", chargeId, {
      disputeId,
      status: "under_review",
    });
    b().clock.advance(DAY_MS);
    const closed = b().fake.disputeEvent("charge.dispute.closed", chargeId, {
      disputeId,
      status: "won",
    });
    // Newest first: the closing, then the update, then the opening.
    await deliver(b(), closed, updated, created);
    const [row] = await disputesOf(org.organizationId);
    expect(row).toMatchObject({
      id: disputeId,
      amount: 4900,
      status: "won",
      isOpen: false,
      openedAt: new Date(created.created * 1000).toISOString(),
      closedAt: new Date(closed.created * 1000).toISOString(),
    });
    // Opened (the update showed it open): each of the two operators was told once all the same.
    expect(
      await db().notification.count({
        where: { organizationId: org.organizationId, type: "ops.dispute_opened" },
      }),
    ).toBe(2);
  });

  it("fails the delivery when Stripe cannot say whose charge it is (nothing stored) and applies the retry", async () => {
    const org = await subscribedOrganization(b());
    const chargeId = await paidCharge(org);
    const created = b().fake.disputeEvent("charge.dispute.created", chargeId);
    b().fake.failNext({ method: "GET", path: `/v1/charges/${chargeId}`, status: 500, times: 3 });
    const failed = await b().postStripeEvent(created);
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe("WEBHOOK_HANDLER_FAILED");
    expect(await db().dispute.count({ where: { organizationId: org.organizationId } })).toBe(0);
    await deliver(b(), created);
    expect(await db().dispute.count({ where: { organizationId: org.organizationId } })).toBe(1);
  });

  it("ignores a dispute on a charge of a customer that is not ours", async () => {
    const org = await subscribedOrganization(b());
    const chargeId = await paidCharge(org);
    b().fake.charges.get(chargeId)!.customer = "cus_someone_else";
    const event = b().fake.disputeEvent("charge.dispute.created", chargeId);
    expect((await b().postStripeEvent(event)).status).toBe(200);
    expect(await db().dispute.count({ where: { organizationId: org.organizationId } })).toBe(0);
  });

  it("does not restrict the organization by default (DISPUTE_READ_ONLY off)", async () => {
    const org = await subscribedOrganization(b());
    await deliver(b(), b().fake.disputeEvent("charge.dispute.created", await paidCharge(org)));
    expect(
      (await api().post("/api/v1/meetings").set(org.admin.headers).send(meetingBody())).status,
    ).toBe(201);
  });

  it("shows open disputes in the console's overview, the earliest evidence deadline first", async () => {
    // Disputes this suite left open in the worker's database on earlier runs are closed first.
    await db().dispute.updateMany({ where: { closedAt: null }, data: { closedAt: new Date() } });
    const org = await subscribedOrganization(b());
    const dueBy = Math.floor(b().clock.now().getTime() / 1000) + 2 * 86_400;
    await deliver(
      b(),
      b().fake.disputeEvent("charge.dispute.created", await paidCharge(org, 2500), {
        evidenceDueBy: dueBy,
        status: "warning_needs_response",
        reason: "general",
      }),
    );
    const overview = await api()
      .get("/api/v1/admin/overview")
      .set(await operatorHeaders());
    expect(overview.status).toBe(200);
    expect(overview.body.disputes).toMatchObject({ open: 1, needsResponse: 1 });
    expect(overview.body.disputes.evidenceDueFirst).toHaveLength(1);
    expect(overview.body.disputes.evidenceDueFirst[0]).toMatchObject({
      organizationId: org.organizationId,
      organizationName: org.name,
      amount: 2500,
      status: "warning_needs_response",
      evidenceDueBy: new Date(dueBy * 1000).toISOString(),
    });
  });
});

describe("DISPUTE_READ_ONLY=true", () => {
  let restricted: BillingWorld;
  beforeAll(async () => {
    restricted = await startBillingWorld({ DISPUTE_READ_ONLY: "true" });
  });
  afterAll(() => restricted.close());

  it("refuses writes with 402 PAYMENT_DISPUTED while a dispute is open, reads still work, and lifts when it closes", async () => {
    const rb = restricted.b;
    const org = await subscribedOrganization(rb);
    const post = () =>
      request(rb.testApp.app).post("/api/v1/meetings").set(org.admin.headers).send(meetingBody());
    expect((await post()).status).toBe(201);
    rb.clock.advance(DAY_MS);
    const paid = rb.fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId);
    await deliver(rb, paid);
    const chargeId = rb.fake.chargeOf((paid.data.object as unknown as { id: string }).id)
      .id as string;
    const opened = rb.fake.disputeEvent("charge.dispute.created", chargeId);
    await deliver(rb, opened);

    const refused = await post();
    expect(refused.status).toBe(402);
    expect(refused.body.error.code).toBe("PAYMENT_DISPUTED");
    expect(
      (await request(rb.testApp.app).get("/api/v1/meetings").set(org.admin.headers)).status,
    ).toBe(200);
    // Paying and managing billing stay open.
    expect(
      (
        await request(rb.testApp.app)
          .post("/api/v1/billing/portal")
          .set(org.admin.headers)
          .send({ flow: "payment_method_update" })
      ).status,
    ).toBe(200);

    rb.clock.advance(DAY_MS);
    const disputeId = (opened.data.object as unknown as { id: string }).id;
    await deliver(
      rb,
      rb.fake.disputeEvent("charge.dispute.closed", chargeId, { disputeId, status: "lost" }),
    );
    expect((await post()).status).toBe(201);
  });
});
