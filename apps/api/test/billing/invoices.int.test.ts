import type request from "supertest";
import type { InvoiceJson } from "../../src/billing/invoices/invoices";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import {
  DAY_MS,
  deliver,
  subscribedOrganization,
  type SubscribedOrganization,
  useBillingWorld,
} from "./billingScenario";

const { b, api } = useBillingWorld();

/** `count` monthly renewals of the organization, each paid (oldest first), and their ids. */
async function renewals(org: SubscribedOrganization, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let index = 0; index < count; index += 1) {
    b().clock.advance(30 * DAY_MS);
    const event = b().fake.invoiceEvent("invoice.paid", org.stripeSubscriptionId, {
      amountDue: 1900 + index,
    });
    ids.push((event.data.object as unknown as { id: string }).id);
    await deliver(b(), event);
  }
  return ids;
}

describe("GET /api/v1/billing/invoices", () => {
  it("pages through the organization's invoices newest first, as Stripe's cursor pages, with their links", async () => {
    const org = await subscribedOrganization(b());
    const ids = await renewals(org, 5);
    const newestFirst = [...ids].reverse();

    const seen: InvoiceJson[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: request.Response = await api()
        .get("/api/v1/billing/invoices")
        .query({ limit: 2, ...(cursor ? { cursor } : {}) })
        .set(org.admin.headers);
      expect(page.status).toBe(200);
      seen.push(...(page.body.data as InvoiceJson[]));
      cursor = page.body.nextCursor as string | null;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((invoice) => invoice.id)).toEqual(newestFirst);

    // Stripe was asked for exactly these pages: each continues after the last invoice shown.
    const lists = b()
      .fake.requestsTo("GET", "/v1/invoices")
      .filter((r) => r.params.customer === org.customerId);
    expect(lists.map((r) => r.params.starting_after)).toEqual([
      undefined,
      newestFirst[1],
      newestFirst[3],
    ]);
    expect(lists.every((r) => r.params.limit === "2")).toBe(true);

    const newest = seen[0]!;
    const stored = b().fake.invoices.get(newest.id)!;
    const line = (stored.lines as { data: { period: { start: number; end: number } }[] }).data[0]!;
    expect(newest).toEqual({
      id: newest.id,
      number: stored.number,
      status: "paid",
      amountDue: 1904,
      amountPaid: 1904,
      amountRemaining: 0,
      total: 1904,
      currency: "usd",
      periodStart: new Date(line.period.start * 1000).toISOString(),
      periodEnd: new Date(line.period.end * 1000).toISOString(),
      created: new Date(Number(stored.created) * 1000).toISOString(),
      hostedInvoiceUrl: stored.hosted_invoice_url,
      invoicePdf: stored.invoice_pdf,
    });
    expect(newest.invoicePdf).toMatch(/^https:\/\/pay\.stripe\.test\/invoice\/.*\/pdf$/);
  });

  it("is a read (billing:read): members and keys holding it see them, a key without it gets 403", async () => {
    const org = await subscribedOrganization(b());
    await renewals(org, 1);
    const member = await authHeaderFor(b().testApp, {
      role: "member",
      organizationId: org.organizationId,
    });
    const asMember = await api().get("/api/v1/billing/invoices").set(member.headers);
    expect(asMember.status).toBe(200);
    expect(asMember.body.data).toHaveLength(1);
    const reader = await apiKeyHeaderFor(b().testApp, {
      scopes: ["billing:read"],
      organizationId: org.organizationId,
    });
    expect(
      (await api().get("/api/v1/billing/invoices").set(reader.headers)).body.data,
    ).toHaveLength(1);
    const other = await apiKeyHeaderFor(b().testApp, {
      scopes: ["meetings:read"],
      organizationId: org.organizationId,
    });
    const refused = await api().get("/api/v1/billing/invoices").set(other.headers);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("INSUFFICIENT_SCOPE");
  });

  it("never shows another organization's invoices: its cursor is refused before Stripe is asked", async () => {
    const mine = await subscribedOrganization(b());
    const theirs = await subscribedOrganization(b());
    await renewals(mine, 1);
    await renewals(theirs, 3);
    const theirPage = await api()
      .get("/api/v1/billing/invoices")
      .query({ limit: 1 })
      .set(theirs.admin.headers);
    const theirCursor = theirPage.body.nextCursor as string;
    expect(theirCursor).toEqual(expect.any(String));

    const mineOnly = await api().get("/api/v1/billing/invoices").set(mine.admin.headers);
    expect(mineOnly.body.data).toHaveLength(1);
    expect(
      (mineOnly.body.data as InvoiceJson[]).every(
        (invoice) => b().fake.invoices.get(invoice.id)!.customer === mine.customerId,
      ),
    ).toBe(true);

    const before = b().fake.requestsTo("GET", "/v1/invoices").length;
    const stolen = await api()
      .get("/api/v1/billing/invoices")
      .query({ cursor: theirCursor })
      .set(mine.admin.headers);
    expect(stolen.status).toBe(400);
    expect(stolen.body.error.code).toBe("INVALID_CURSOR");
    const forged = await api()
      .get("/api/v1/billing/invoices")
      .query({ cursor: "in_1Pgc6tB7WZ01zgkWu9fdqL6I" })
      .set(mine.admin.headers);
    expect(forged.status).toBe(400);
    expect(forged.body.error.code).toBe("INVALID_CURSOR");
    expect(b().fake.requestsTo("GET", "/v1/invoices").length).toBe(before);
  });

  it("answers an empty list without asking Stripe for an organization that never paid", async () => {
    const admin = await authHeaderFor(b().testApp, { role: "admin" });
    const before = b().fake.requests.length;
    const response = await api().get("/api/v1/billing/invoices").set(admin.headers);
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: [], nextCursor: null });
    expect(b().fake.requests.length).toBe(before);
  });

  it("answers 502 STRIPE_ERROR when Stripe fails, and 400 for a bad limit", async () => {
    const org = await subscribedOrganization(b());
    b().fake.failNext({ method: "GET", path: "/v1/invoices", status: 500, times: 3 });
    const failed = await api().get("/api/v1/billing/invoices").set(org.admin.headers);
    expect(failed.status).toBe(502);
    expect(failed.body.error.code).toBe("STRIPE_ERROR");
    const bad = await api()
      .get("/api/v1/billing/invoices")
      .query({ limit: 0 })
      .set(org.admin.headers);
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_ERROR");
  });
});
