import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import request from "supertest";
import { cardWarningThreshold } from "../../src/billing/dunning/expiringCards";
import { runJob } from "../../src/jobs";
import { signClerkToken } from "../support/auth";
import {
  CARD_UPDATE_PAGE,
  DAY_MS,
  deliver,
  mailsAbout,
  settle,
  subscribedOrganization,
  type SubscribedOrganization,
  useBillingWorld,
} from "./billingScenario";

const { world, b, db } = useBillingWorld();
const HOUR_MS = 60 * 60 * 1000;

/**
 * A tick of the job at the clock, unique to this run of the suite (runs are recorded per job and
 * tick in the worker's database, which outlives the suite).
 */
const tick = () => new Date(b().clock.now().getTime() + Math.floor(Math.random() * 60_000));

/** Runs the daily job as the scheduler would (through the runner, recorded). */
async function runWarnJob(scheduledFor = tick()) {
  const job = b().testApp.ctx.jobs.find((entry) => entry.name === "warnExpiringCards")!;
  const outcome = await runJob(b().testApp.ctx, job, {
    scheduledFor,
    instanceId: `test:${process.pid}`,
  });
  await settle(b());
  return outcome;
}

/**
 * A card that expires at the end of the month about two months from the clock, made the
 * subscription's card; returns it with the instant it stops working.
 */
async function cardExpiringSoon(org: SubscribedOrganization, last4 = "4242") {
  const inTwoMonths = new Date(b().clock.now().getTime() + 60 * DAY_MS);
  const expMonth = inTwoMonths.getUTCMonth() + 1;
  const expYear = inTwoMonths.getUTCFullYear();
  const { paymentMethod, event } = b().fake.attachCard(org.customerId, {
    brand: "visa",
    last4,
    expMonth,
    expYear,
  });
  b().clock.advance(1_000);
  await deliver(
    b(),
    event,
    b().fake.setSubscriptionDefault(org.stripeSubscriptionId, paymentMethod.id as string),
  );
  return {
    id: paymentMethod.id as string,
    expMonth,
    expYear,
    expiresAt: new Date(Date.UTC(expYear, expMonth, 1)),
  };
}

const warningsTo = (address: string) => mailsAbout(world().smtp, address, "card of");

describe("warnExpiringCards (daily job)", () => {
  it("is listed with the jobs, in the job command's usage and the console's job list", async () => {
    expect(b().testApp.ctx.jobs.map((job) => job.name)).toContain("warnExpiringCards");
    const usage = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", path.join(__dirname, "../../src/cli/job.ts")],
      { cwd: path.join(__dirname, "../.."), env: { PATH: process.env.PATH } },
    ).catch((error: { stderr: string }) => error);
    expect(usage.stderr).toMatch(/jobs: .*warnExpiringCards/);

    const org = await subscribedOrganization(b());
    const user = await db().user.findUniqueOrThrow({ where: { id: org.admin.userId } });
    const operator = {
      Authorization: `Bearer ${signClerkToken({
        userId: user.clerkId,
        orgId: org.admin.orgClerkId,
        claims: { metadata: { platformAdmin: true } },
      })}`,
    };
    const api = request(b().testApp.app);
    const jobs = await api.get("/api/v1/admin/jobs").set(operator);
    expect(jobs.body.data).toContainEqual(
      expect.objectContaining({
        name: "warnExpiringCards",
        schedule: "15 8 * * *",
        description: expect.stringContaining("30 and 7 days"),
      }),
    );
    const run = await request(b().testApp.app)
      .post("/api/v1/admin/jobs/warnExpiringCards/run")
      .set(operator)
      .send({ reason: "checking the card warnings by hand" });
    expect(run.status).toBe(200);
    expect(run.body.outcome.status).toBe("succeeded");
  });

  it("e-mails 30 and again 7 days before the card expires, once per threshold, naming the card and linking the card form", async () => {
    const org = await subscribedOrganization(b());
    const card = await cardExpiringSoon(org);
    const expiresAt = card.expiresAt.getTime();

    b().clock.set(expiresAt - 31 * DAY_MS);
    await runWarnJob();
    expect(warningsTo(org.adminEmail)).toHaveLength(0);

    b().clock.set(expiresAt - 30 * DAY_MS + HOUR_MS);
    expect(await runWarnJob()).toMatchObject({ status: "succeeded" });
    // Again the same day (a manual run), the next day, and from two instances at once (one
    // tick: one runs), and two ticks at once.
    await runWarnJob();
    b().clock.advance(DAY_MS);
    const sameTick = tick();
    const outcomes = await Promise.all([runWarnJob(sameTick), runWarnJob(sameTick)]);
    expect(outcomes.map((outcome) => outcome.status).sort()).toEqual(["skipped", "succeeded"]);
    await Promise.all([runWarnJob(), runWarnJob()]);
    for (const address of [org.adminEmail, org.billingEmail]) {
      const mails = warningsTo(address);
      expect(mails).toHaveLength(1);
      const month = new Intl.DateTimeFormat("en-GB", { month: "long", timeZone: "UTC" }).format(
        new Date(Date.UTC(2000, card.expMonth - 1, 1)),
      );
      expect(mails[0]!.parsed.subject).toBe(
        `The card of ${org.name} expires at the end of ${month} ${card.expYear}`,
      );
      const text = mails[0]!.parsed.text ?? "";
      expect(text).toContain("Card: Visa ending in 4242");
      expect(text).toContain(`Expires: ${String(card.expMonth).padStart(2, "0")}/${card.expYear}`);
      expect(text).toContain("in about a month");
      expect(text).toContain(`Update your card: ${CARD_UPDATE_PAGE}`);
    }

    b().clock.set(expiresAt - 7 * DAY_MS + HOUR_MS);
    await runWarnJob();
    await runWarnJob();
    const mails = warningsTo(org.adminEmail);
    expect(mails).toHaveLength(2);
    expect(mails[1]!.parsed.text).toContain("in less than a week");

    // Expired: nothing more.
    b().clock.set(expiresAt + HOUR_MS);
    await runWarnJob();
    expect(warningsTo(org.adminEmail)).toHaveLength(2);
  });

  it("does not warn about a card the card updater renewed, and skips a warning queued before the renewal", async () => {
    const org = await subscribedOrganization(b());
    const card = await cardExpiringSoon(org, "1881");
    b().clock.set(card.expiresAt.getTime() - 30 * DAY_MS + HOUR_MS);
    // The relay refuses the first attempt, and the card updater renews the card meanwhile.
    world().smtp.failNext({ to: org.adminEmail, code: 421 });
    world().smtp.failNext({ to: org.billingEmail, code: 421 });
    await runWarnJob();
    await deliver(
      b(),
      b().fake.updateCardAutomatically(card.id, {
        expMonth: card.expMonth,
        expYear: card.expYear + 3,
      }),
    );
    await b().testApp.ctx.notices.deliverNow(new Date(b().clock.now().getTime() + HOUR_MS));
    expect(warningsTo(org.adminEmail)).toHaveLength(0);
    const rows = await db().notification.findMany({
      where: { organizationId: org.organizationId, type: "billing.card_expiring" },
    });
    expect(rows.map((row) => [row.status, row.lastError])).toEqual([
      ["skipped", "the card was renewed (new expiry) before the notice went out"],
      ["skipped", "the card was renewed (new expiry) before the notice went out"],
    ]);
    // At the 7-day mark of the old expiry: the renewed card is years away.
    b().clock.set(card.expiresAt.getTime() - 7 * DAY_MS + HOUR_MS);
    await runWarnJob();
    expect(warningsTo(org.adminEmail)).toHaveLength(0);
  });

  it("only warns while a paid subscription will renew after the expiry (not when it ends at its period's end)", async () => {
    const org = await subscribedOrganization(b());
    const card = await cardExpiringSoon(org, "3220");
    const canceled = await request(b().testApp.app)
      .post("/api/v1/billing/subscription/cancel")
      .set(org.admin.headers)
      .send({ atPeriodEnd: true });
    expect(canceled.status).toBe(200);
    b().clock.set(card.expiresAt.getTime() - 30 * DAY_MS + HOUR_MS);
    await runWarnJob();
    expect(warningsTo(org.adminEmail)).toHaveLength(0);
    expect(
      await db().notification.count({
        where: { organizationId: org.organizationId, type: "billing.card_expiring" },
      }),
    ).toBe(0);
  });

  it("picks the threshold a card has reached: none beyond 30 days or after expiry, 7 inside the last week", () => {
    const expiresAt = new Date(Date.UTC(2027, 2, 1));
    const at = (days: number) => new Date(expiresAt.getTime() - days * DAY_MS);
    expect(cardWarningThreshold(expiresAt, at(31))).toBeNull();
    expect(cardWarningThreshold(expiresAt, at(30))).toBe(30);
    expect(cardWarningThreshold(expiresAt, at(8))).toBe(30);
    expect(cardWarningThreshold(expiresAt, at(7))).toBe(7);
    expect(cardWarningThreshold(expiresAt, at(0))).toBeNull();
  });
});
