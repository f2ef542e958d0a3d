import { createOrganizationWithAdmin, uniqueSuffix } from "@zigznote/database/testing";
import { Writable } from "node:stream";
import request from "supertest";
import { suspendExpiredGracePeriods } from "../../src/billing";
import { transaction } from "../../src/lib/afterCommit";
import {
  createEmailTransport,
  createNotices,
  enqueueAdminNotices,
  noticeMessageId,
} from "../../src/notifications";
import { createLogger } from "../../src/lib/logger";
import { authHeaderFor } from "../support/auth";
import { createBillingTestApp, type BillingTestApp } from "../support/billingHarness";
import { TestSmtpServer, type ReceivedMail } from "../support/smtpServer";

const DAY_MS = 24 * 60 * 60 * 1000;
const FROM = "zigznote <billing@zigznote.test>";
const APP_URL = "https://app.zigznote.test";
const CARD_UPDATE_PAGE = `${APP_URL}/settings/billing?flow=payment_method_update`;

let smtp: TestSmtpServer;
let b: BillingTestApp;
beforeAll(async () => {
  smtp = await TestSmtpServer.start();
  b = await createBillingTestApp({
    env: { EMAIL_TRANSPORT: "smtp", SMTP_URL: smtp.url(), EMAIL_FROM: FROM, APP_URL },
  });
});
afterAll(async () => {
  await b.close();
  await smtp.close();
});

const api = () => request(b.testApp.app);
const db = () => b.testApp.ctx.db;
const notices = () => b.testApp.ctx.notices;

/** An organization with two admins (and a Stripe customer whose billing e-mail is its own). */
async function organizationWithTwoAdmins(name?: string) {
  const first = await authHeaderFor(b.testApp, { role: "admin" });
  const second = await authHeaderFor(b.testApp, {
    role: "admin",
    organizationId: first.organizationId,
  });
  if (name) {
    await db().organization.update({ where: { id: first.organizationId }, data: { name } });
  }
  const users = await db().user.findMany({
    where: { id: { in: [first.userId, second.userId] } },
    select: { email: true },
  });
  return { first, second, adminEmails: users.map((user) => user.email!) };
}

/** Messages that arrived for an organization (by the notice header naming its rows). */
function messagesTo(addresses: string[]): ReceivedMail[] {
  const wanted = new Set(addresses.map((address) => address.toLowerCase()));
  return smtp.messages.filter((mail) =>
    mail.envelopeTo.some((rcpt) => wanted.has(rcpt.toLowerCase())),
  );
}

function utcDate(ms: number): string {
  return `${new Intl.DateTimeFormat("en-GB", {
    dateStyle: "long",
    timeStyle: "short",
    timeZone: "UTC",
  }).format(new Date(ms))} UTC`;
}

describe("dunning e-mails over SMTP", () => {
  it("sends the whole sequence, first failure to suspension and back, to each admin and the billing e-mail once", async () => {
    const { first, adminEmails } = await organizationWithTwoAdmins();
    const subscribed = await api()
      .post("/api/v1/billing/subscription")
      .set(first.headers)
      .send({ planSlug: "pro" });
    expect(subscribed.status).toBe(200);
    const stripeSubscriptionId = subscribed.body.data.stripeSubscriptionId as string;
    for (const event of b.eventsFor(stripeSubscriptionId)) {
      expect((await b.postStripeEvent(event)).status).toBe(200);
    }
    // The customer's billing contact (accounts payable), as Stripe tells us.
    const billingEmail = `ap-${uniqueSuffix()}@acme.test`;
    const organization = await db().organization.findUniqueOrThrow({
      where: { id: first.organizationId },
    });
    const customer = b.fake.customers.get(organization.stripeCustomerId!)!;
    customer.email = billingEmail;
    expect((await b.postStripeEvent(b.fake.buildEvent("customer.updated", customer))).status).toBe(
      200,
    );

    const failures: number[] = [];
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      b.clock.advance(DAY_MS);
      const event = b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId, {
        amountDue: 1900,
        attemptCount: attempt,
      });
      failures.push(event.created * 1000);
      expect((await b.postStripeEvent(event)).status).toBe(200);
      await notices().idle();
    }
    const suspendsAt = failures[0]! + 7 * DAY_MS;
    b.clock.set(suspendsAt + 60_000);
    await suspendExpiredGracePeriods(b.testApp.ctx, { now: b.clock.now() });
    await notices().idle();
    b.clock.advance(60_000);
    const paid = b.fake.invoiceEvent("invoice.paid", stripeSubscriptionId, { amountDue: 1900 });
    expect((await b.postStripeEvent(paid)).status).toBe(200);
    await notices().idle();

    const recipients = [...adminEmails, billingEmail].map((address) => address.toLowerCase());
    const received = messagesTo(recipients);
    const name = organization.name;
    const expectedSubjects = [
      `Payment of $19.00 failed for ${name} (attempt 1 of 4)`,
      `Payment of $19.00 failed for ${name} (attempt 2 of 4)`,
      `Payment of $19.00 failed for ${name} (attempt 3 of 4)`,
      `Final notice: ${name} will be suspended on ${utcDate(suspendsAt)}`,
      `${name} is suspended: update your payment method`,
      `Access restored for ${name}`,
    ];
    // Each recipient got exactly the sequence, in order, once.
    for (const address of recipients) {
      const mine = received.filter((mail) => mail.envelopeTo.includes(address));
      expect(mine.map((mail) => mail.parsed.subject)).toEqual(expectedSubjects);
      for (const mail of mine) {
        expect(mail.envelopeTo).toEqual([address]);
        expect(mail.parsed.to && "text" in mail.parsed.to ? mail.parsed.to.text : "").toBe(address);
        expect(mail.parsed.from?.text).toBe('"zigznote" <billing@zigznote.test>');
      }
    }
    expect(received).toHaveLength(expectedSubjects.length * recipients.length);

    const [firstFailure] = received;
    expect(firstFailure!.parsed.text).toContain("We could not collect $19.00");
    expect(firstFailure!.parsed.text).toContain(
      `update your payment method before ${utcDate(suspendsAt)}`,
    );
    // The invoice's own page (pay at once, with the bank's confirmation if it asks) and the card.
    const hostedPage =
      /Pay this invoice: (https:\/\/invoice\.stripe\.test\/i\/acct_test\/in_\w+)/.exec(
        firstFailure!.parsed.text ?? "",
      )?.[1];
    expect(hostedPage).toBeDefined();
    expect(firstFailure!.parsed.html).toContain(`href="${hostedPage}"`);
    expect(firstFailure!.parsed.text).toContain(`Update your card: ${CARD_UPDATE_PAGE}`);
    expect(firstFailure!.parsed.html).toContain(`href="${CARD_UPDATE_PAGE}"`);
    const final = received.find((mail) => mail.parsed.subject?.startsWith("Final notice"))!;
    expect(final.parsed.text).toContain(`Suspension on: ${utcDate(suspendsAt)}`);
    expect(final.parsed.text).toContain("Attempt: 4 of 4");
    expect(final.parsed.text).toMatch(/Pay this invoice: https:\/\/invoice\.stripe\.test\//);
    expect(final.parsed.text).toContain(`Update your card: ${CARD_UPDATE_PAGE}`);

    // One message per outbox row, each carrying the row's Message-ID.
    const rows = await db().notification.findMany({
      where: { organizationId: first.organizationId },
    });
    expect(rows.every((row) => row.status === "sent")).toBe(true);
    expect(new Set(received.map((mail) => mail.parsed.messageId))).toEqual(
      new Set(rows.map((row) => noticeMessageId(row.id, FROM))),
    );
  }, 90_000);

  it("does not send a dunning e-mail whose invoice was paid before it went out (skipped)", async () => {
    const { first, adminEmails } = await organizationWithTwoAdmins();
    const subscribed = await api()
      .post("/api/v1/billing/subscription")
      .set(first.headers)
      .send({ planSlug: "pro" });
    const stripeSubscriptionId = subscribed.body.data.stripeSubscriptionId as string;
    for (const event of b.eventsFor(stripeSubscriptionId)) await b.postStripeEvent(event);
    await notices().idle();
    const before = messagesTo(adminEmails).length;

    // The relay is down when the failure is recorded; the customer pays before the retry.
    smtp.failNext({ code: 421, times: 2 });
    b.clock.advance(DAY_MS);
    await b.postStripeEvent(b.fake.invoiceEvent("invoice.payment_failed", stripeSubscriptionId));
    await notices().idle();
    b.clock.advance(60_000);
    await b.postStripeEvent(b.fake.invoiceEvent("invoice.paid", stripeSubscriptionId));
    await notices().idle();
    await notices().deliverNow(new Date(b.clock.now().getTime() + DAY_MS));

    expect(messagesTo(adminEmails).length).toBe(before);
    const dunning = await db().notification.findMany({
      where: { organizationId: first.organizationId, type: "billing.payment_failed" },
    });
    expect(dunning).toHaveLength(2);
    for (const row of dunning) {
      expect(row.status).toBe("skipped");
      expect(row.lastError).toBe("the invoice was paid before the notice went out");
    }
  });
});

describe("notice delivery reliability over SMTP", () => {
  async function queueViolation(organizationId: string, key: string) {
    await enqueueAdminNotices({ db: db() }, [
      {
        organizationId,
        type: "plan.violation_resolved",
        payload: { planSlug: "free", type: "meetings" },
        dedupeKey: key,
      },
    ]);
  }

  it("retries a temporary SMTP failure with back-off and delivers it once", async () => {
    const { organization, user } = await createOrganizationWithAdmin(db());
    smtp.failNext({ to: user.email!, code: 451 });
    await queueViolation(organization.id, `temp:${organization.id}`);
    const now = b.clock.now();

    const firstRun = await notices().deliverNow(now);
    expect(firstRun).toMatchObject({ sent: 0, retried: 1 });
    let row = await db().notification.findFirstOrThrow({
      where: { organizationId: organization.id },
    });
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    expect(row.lastError).toMatch(/451/);
    // Backing off: a run a moment later leaves it alone.
    await notices().deliverNow(new Date(now.getTime() + 1_000));
    expect(smtp.to(user.email!)).toHaveLength(0);

    await notices().deliverNow(new Date(now.getTime() + 2 * 60_000));
    row = await db().notification.findFirstOrThrow({ where: { organizationId: organization.id } });
    expect(row).toMatchObject({ status: "sent", attempts: 2, lastError: null });
    expect(smtp.to(user.email!)).toHaveLength(1);
    await notices().deliverNow(new Date(now.getTime() + 60 * 60_000));
    expect(smtp.to(user.email!)).toHaveLength(1);
  });

  it("treats a refused connection as temporary: the row stays pending with the error", async () => {
    const { organization } = await createOrganizationWithAdmin(db());
    await queueViolation(organization.id, `refused:${organization.id}`);
    // A port nothing listens on: the relay is down.
    const closed = await TestSmtpServer.start();
    const deadUrl = closed.url();
    await closed.close();
    const logger = createLogger("silent");
    const down = createNotices({
      db: db(),
      clock: b.clock,
      logger,
      transport: createEmailTransport(
        { mode: "smtp", smtpUrl: deadUrl, from: FROM, appUrl: APP_URL, timeoutMs: 2_000 },
        logger,
      ),
    });
    const result = await down.deliverNow(b.clock.now());
    expect(result.retried).toBeGreaterThanOrEqual(1);
    const row = await db().notification.findFirstOrThrow({
      where: { organizationId: organization.id },
    });
    expect(row).toMatchObject({ status: "pending", attempts: 1 });
    expect(row.lastError).toMatch(/ECONNREFUSED|connect/i);
    // The relay is back: the app's deliverer sends it once the back-off is over.
    await notices().deliverNow(new Date(b.clock.now().getTime() + 2 * 60_000));
    expect(
      await db().notification.findFirstOrThrow({ where: { organizationId: organization.id } }),
    ).toMatchObject({ status: "sent", attempts: 2 });
  });

  it("marks a permanent SMTP failure failed, lists it at GET /api/v1/notices and counts it in /metrics", async () => {
    const admin = await authHeaderFor(b.testApp, { role: "admin" });
    const user = await db().user.findUniqueOrThrow({ where: { id: admin.userId } });
    smtp.failNext({ to: user.email!, code: 550, message: "no such mailbox" });
    await queueViolation(admin.organizationId, `perm:${admin.organizationId}`);
    await notices().deliverNow(b.clock.now());

    const row = await db().notification.findFirstOrThrow({
      where: { organizationId: admin.organizationId },
    });
    expect(row).toMatchObject({ status: "failed", attempts: 1 });
    expect(row.lastError).toMatch(/550/);
    expect(smtp.to(user.email!)).toHaveLength(0);

    const listed = await api().get("/api/v1/notices?status=failed").set(admin.headers).expect(200);
    expect(listed.body.data).toEqual([
      expect.objectContaining({
        id: row.id,
        type: "plan.violation_resolved",
        status: "failed",
        attempts: 1,
        recipientEmail: user.email,
        lastError: expect.stringMatching(/550/),
      }),
    ]);
    const member = await authHeaderFor(b.testApp, {
      role: "member",
      organizationId: admin.organizationId,
    });
    await api().get("/api/v1/notices").set(member.headers).expect(403);

    const metrics = await api().get("/metrics").expect(200);
    expect(metrics.text).toMatch(
      /zigznote_notices_total\{type="plan.violation_resolved",outcome="failed"\} [1-9]/,
    );
  });

  it("logs a refused recipient's failure without the recipient's address", async () => {
    const { organization, user } = await createOrganizationWithAdmin(db());
    const address = user.email!;
    // Relays quote the refused recipient in their answer; nodemailer also lists it on the error.
    smtp.failNext({ to: address, code: 550, message: `5.1.1 <${address}>: no such mailbox` });
    smtp.failNext({ to: address, code: 451, message: `4.2.0 <${address}>: greylisted` });
    await queueViolation(organization.id, `logged-perm:${organization.id}`);
    await queueViolation(organization.id, `logged-temp:${organization.id}`);
    const output: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger("debug", {}, sink);
    const deliverer = createNotices({
      db: db(),
      clock: b.clock,
      logger,
      transport: createEmailTransport(
        { mode: "smtp", smtpUrl: smtp.url(), from: FROM, appUrl: APP_URL },
        logger,
      ),
    });
    await deliverer.deliverNow(b.clock.now());
    const rows = await db().notification.findMany({ where: { organizationId: organization.id } });
    expect(rows.map((row) => row.status).sort()).toEqual(["failed", "pending"]);

    const lines = output
      .join("")
      .split("\n")
      .filter((line) => line.includes("notification delivery failed"));
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.toLowerCase()).not.toContain(address.toLowerCase());
      // What an operator needs is still there: the SMTP reply code and the command.
      expect(line).toMatch(/"responseCode":(550|451)/);
      expect(line).toContain("[email]");
    }
    // The row keeps the full answer for the organization's admins (their own address).
    const failed = await db().notification.findFirstOrThrow({
      where: { organizationId: organization.id, status: "failed" },
    });
    expect(failed.lastError).toContain(address);
  });

  it("two deliverers racing over 200 rows send 200 messages, one per row", async () => {
    const { organization } = await createOrganizationWithAdmin(db());
    const rows = Array.from({ length: 200 }, (_, index) => ({
      organizationId: organization.id,
      type: "plan.violation_resolved",
      payload: { planSlug: "free", type: "meetings" },
      dedupeKey: `race:${organization.id}:${index}`,
    }));
    await transaction(db(), (tx) => enqueueAdminNotices({ db: tx }, rows));
    const logger = createLogger("silent");
    const deliverer = () =>
      createNotices({
        db: db(),
        clock: b.clock,
        logger,
        transport: createEmailTransport(
          { mode: "smtp", smtpUrl: smtp.url(), from: FROM, appUrl: APP_URL },
          logger,
        ),
        delivery: { maxAttempts: 5 },
      });
    const [one, two] = [deliverer(), deliverer()];
    const now = b.clock.now();
    const results = await Promise.all([one.deliverNow(now), two.deliverNow(now)]);

    const stored = await db().notification.findMany({
      where: { organizationId: organization.id },
    });
    const ids = new Set(stored.map((row) => noticeMessageId(row.id, FROM)));
    const arrived = smtp.messages.filter((mail) => ids.has(mail.parsed.messageId ?? ""));
    expect(arrived).toHaveLength(200);
    expect(new Set(arrived.map((mail) => mail.parsed.messageId)).size).toBe(200);
    expect(results[0].sent + results[1].sent).toBe(200);
    // Both took part (the claim splits the work, it does not serialize it).
    expect(results[0].sent).toBeGreaterThan(0);
    expect(results[1].sent).toBeGreaterThan(0);
    expect(stored.every((row) => row.status === "sent" && row.attempts === 1)).toBe(true);
    // 200 SMTP transactions and renders: minutes on a loaded 2-core machine, not seconds.
  }, 180_000);

  it("a deliverer whose batch outlasts its claim does not send the rows another deliverer took over", async () => {
    const { organization, user } = await createOrganizationWithAdmin(db());
    // Two notices, queued one after the other (oldest first is the claim's order).
    for (const index of [1, 2]) {
      await enqueueAdminNotices({ db: db() }, [
        {
          organizationId: organization.id,
          type: "plan.violation_resolved",
          payload: { planSlug: "free", type: "meetings" },
          dedupeKey: `outlast:${organization.id}:${index}`,
        },
      ]);
    }
    const [first, second] = await db().notification.findMany({
      where: { organizationId: organization.id },
      orderBy: { createdAt: "asc" },
    });
    const logger = createLogger("silent");
    const slow = createNotices({
      db: db(),
      clock: b.clock,
      logger,
      transport: createEmailTransport(
        { mode: "smtp", smtpUrl: smtp.url(), from: FROM, appUrl: APP_URL },
        logger,
      ),
    });
    // The relay takes more than the claim (60 s) to answer the first message of `slow`'s batch.
    const hold = smtp.holdNext(user.email!);
    const slowRun = slow.deliverNow(b.clock.now());
    await hold.held;
    b.clock.advance(61_000);
    // Another instance's deliverer finds both claims expired and sends both rows.
    const other = await notices().deliverNow(b.clock.now());
    expect(other.sent).toBeGreaterThanOrEqual(2);
    hold.release();
    await slowRun;

    const arrived = (id: string) =>
      smtp.messages.filter((mail) => mail.parsed.messageId === noticeMessageId(id, FROM));
    // The second row was never started by `slow` before its claim ran out: it is sent once.
    // (The first was mid-send when the claim expired; that message can arrive twice, with one
    // Message-ID: claimMs is meant to outlast any one send.)
    expect(arrived(second!.id)).toHaveLength(1);
    expect(arrived(first!.id).length).toBeGreaterThanOrEqual(1);
    expect(
      await db().notification.findMany({ where: { organizationId: organization.id } }),
    ).toEqual([
      expect.objectContaining({ status: "sent" }),
      expect.objectContaining({ status: "sent" }),
    ]);
  });

  it("escapes a hostile organization name in the HTML and drops its bidi controls", async () => {
    const hostile = `<script>alert("pwned")</script> O'Brien & "Sons" \u202Egnp.exe`;
    const { organization, user } = await createOrganizationWithAdmin(db(), { name: hostile });
    await enqueueAdminNotices({ db: db() }, [
      {
        organizationId: organization.id,
        type: "billing.suspended",
        payload: { graceEndedAt: "2026-12-06T09:00:00.000Z" },
        dedupeKey: `hostile:${organization.id}`,
      },
    ]);
    await notices().deliverNow(b.clock.now());
    const [mail] = smtp.to(user.email!);
    expect(mail).toBeDefined();
    const html = mail!.parsed.html as string;
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("\u202E");
    expect(html).toContain(
      "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; O&#39;Brien &amp; &quot;Sons&quot; gnp.exe",
    );
    expect(mail!.parsed.subject).toBe(
      `<script>alert("pwned")</script> O'Brien & "Sons" gnp.exe is suspended: update your payment method`,
    );
    expect(mail!.parsed.text).toContain(`The payment grace period of <script>alert("pwned")`);
  });
});
