import {
  applyStandingFact,
  type Standing,
  type StandingFact,
  type StandingFacts,
} from "./paymentStanding";

const DAY_MS = 24 * 60 * 60 * 1000;
const T0 = Date.UTC(2026, 0, 1);
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const failed = (seconds: number): StandingFact => ({ kind: "payment_failed", at: at(seconds) });
const paid = (seconds: number): StandingFact => ({ kind: "payment_succeeded", at: at(seconds) });
const actionRequired = (seconds: number): StandingFact => ({
  kind: "payment_action_required",
  at: at(seconds),
});
const failedOn = (seconds: number, invoiceId: string): StandingFact => ({
  kind: "payment_failed",
  at: at(seconds),
  invoiceId,
});
const voided = (seconds: number, invoiceId: string): StandingFact => ({
  kind: "invoice_voided",
  at: at(seconds),
  invoiceId,
});
const update = (
  seconds: number,
  stripeStatus: "active" | "past_due" | "unpaid" | "trialing" | "incomplete_expired",
  isLatest = true,
): StandingFact => ({ kind: "subscription", at: at(seconds), stripeStatus, isLatest });

const ACTIVE: StandingFacts = {
  status: "active",
  lastPaymentSucceededEventAt: null,
  outstandingFailuresAt: [],
  outstandingPastDueAt: [],
  outstandingFailureInvoiceIds: [],
  outstandingPastDueInvoiceIds: [],
  voidedInvoiceIds: [],
};

/** Applies the facts one after the other, each arriving at `now`. */
function applyAll(facts: StandingFact[], now = at(100), start: StandingFacts = ACTIVE) {
  return facts.reduce<StandingFacts & Partial<Standing>>(
    (state, fact) => applyStandingFact(state, fact, now, 7).next,
    start,
  );
}

describe("applyStandingFact", () => {
  it("counts failures not covered by a later payment and starts the grace at the oldest", () => {
    const state = applyAll([failed(10), failed(30), paid(20)]);
    expect(state).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
      paymentFailedAt: at(30),
      graceEndsAt: new Date(at(30).getTime() + 7 * DAY_MS),
      outstandingFailuresAt: [at(30)],
    });
    // The same facts in order: failure, payment, failure.
    expect(applyAll([failed(10), paid(20), failed(30)])).toEqual(state);
  });

  it("lets the later arrival win within one second", () => {
    expect(applyAll([failed(10), paid(10)])).toMatchObject({ status: "active" });
    expect(applyAll([paid(10), failed(10)])).toMatchObject({ status: "past_due" });
  });

  it("never lifts a suspension on a subscription event, only on a payment covering the failures", () => {
    const suspended = applyAll([failed(10)], new Date(at(10).getTime() + 8 * DAY_MS));
    expect(suspended.status).toBe("suspended");
    expect(applyAll([update(50, "active")], at(100), suspended).status).toBe("suspended");
    expect(applyAll([paid(5)], at(100), suspended).status).toBe("suspended");
    expect(applyAll([paid(50)], at(100), suspended)).toMatchObject({
      status: "active",
      graceEndsAt: null,
      paymentRetryCount: 0,
    });
  });

  it("starts the grace on a past_due update, and forgets one older than a payment", () => {
    expect(applyAll([update(10, "past_due")])).toMatchObject({
      status: "past_due",
      paymentRetryCount: 0,
      graceEndsAt: new Date(at(10).getTime() + 7 * DAY_MS),
    });
    expect(applyAll([paid(20), update(10, "past_due")])).toMatchObject({
      status: "active",
      graceEndsAt: null,
    });
    // Stripe's `unpaid` is kept as the name of the delinquency.
    expect(applyAll([update(10, "unpaid")]).status).toBe("unpaid");
  });

  it("keeps a newer failure when an older update saying active arrives, and a payment keeps trialing", () => {
    expect(applyAll([failed(20), update(10, "active")])).toMatchObject({
      status: "past_due",
      paymentRetryCount: 1,
    });
    expect(applyAll([update(0, "trialing"), paid(5)]).status).toBe("trialing");
  });

  it("treats a request for the customer's authentication as unpaid: grace without a failed attempt", () => {
    const waiting = applyAll([actionRequired(10)]);
    expect(waiting).toMatchObject({
      status: "past_due",
      paymentRetryCount: 0,
      paymentFailedAt: null,
      graceEndsAt: new Date(at(10).getTime() + 7 * DAY_MS),
    });
    // Unconfirmed past the grace: suspended, as after a failure.
    expect(applyAll([actionRequired(10)], new Date(at(10).getTime() + 8 * DAY_MS)).status).toBe(
      "suspended",
    );
    // The payment (the customer confirmed) covers it, in either arrival order.
    const confirmed = { status: "active", graceEndsAt: null, paymentRetryCount: 0 };
    expect(applyAll([actionRequired(10), paid(20)])).toMatchObject(confirmed);
    expect(applyAll([paid(20), actionRequired(10)])).toMatchObject(confirmed);
    // With a failure too, the grace starts at the oldest fact and one attempt failed.
    expect(applyAll([failed(30), actionRequired(10)])).toMatchObject({
      paymentRetryCount: 1,
      graceEndsAt: new Date(at(10).getTime() + 7 * DAY_MS),
    });
  });

  it("changes nothing on a canceled subscription", () => {
    const canceled: StandingFacts = { ...ACTIVE, status: "canceled" };
    const { next, recorded } = applyStandingFact(canceled, failed(10), at(100), 7);
    expect(recorded).toBe(false);
    expect(next).toMatchObject({ status: "canceled", paymentRetryCount: 0 });
  });

  it("starts no grace period for a subscription never paid for (incomplete), and keeps Stripe's word", () => {
    const incomplete: StandingFacts = { ...ACTIVE, status: "incomplete" };
    const late = new Date(at(10).getTime() + 30 * DAY_MS);
    for (const fact of [failed(10), actionRequired(10)]) {
      const { next, recorded } = applyStandingFact(incomplete, fact, late, 7);
      expect(recorded).toBe(false);
      expect(next).toMatchObject({ status: "incomplete", graceEndsAt: null, paymentRetryCount: 0 });
    }
    const expired = update(20, "incomplete_expired");
    expect(applyAll([failed(10), expired], late, incomplete).status).toBe("incomplete_expired");
    expect(applyAll([failed(10), paid(20)], late, incomplete).status).toBe("active");
  });

  describe("voided invoices", () => {
    const permutations = <T>(items: T[]): T[][] =>
      items.length <= 1
        ? [items]
        : items.flatMap((item, index) =>
            permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [
              item,
              ...rest,
            ]),
          );

    it("withdraws the invoice's failures, its request for authentication and the past_due update naming it, in any order", () => {
      const facts: StandingFact[] = [
        failedOn(10, "in_a"),
        { kind: "payment_action_required", at: at(5), invoiceId: "in_a" },
        { ...update(10, "past_due"), invoiceId: "in_a" } as StandingFact,
        failedOn(40, "in_a"),
        voided(50, "in_a"),
      ];
      for (const order of permutations(facts)) {
        expect(applyAll(order)).toMatchObject({
          status: "active",
          graceEndsAt: null,
          paymentRetryCount: 0,
          paymentFailedAt: null,
          outstandingFailuresAt: [],
          outstandingPastDueAt: [],
          voidedInvoiceIds: ["in_a"],
        });
      }
    });

    it("keeps another invoice's failures with their grace period", () => {
      const expected = {
        status: "past_due",
        paymentRetryCount: 1,
        paymentFailedAt: at(30),
        graceEndsAt: new Date(at(30).getTime() + 7 * DAY_MS),
        outstandingFailureInvoiceIds: ["in_b"],
      };
      const facts = [failedOn(10, "in_a"), failedOn(30, "in_b"), voided(50, "in_a")];
      for (const order of permutations(facts)) expect(applyAll(order)).toMatchObject(expected);
    });

    it("lifts a suspension due to the voided invoice alone; another invoice's ended grace keeps it", () => {
      const later = new Date(at(10).getTime() + 8 * DAY_MS);
      const suspended = applyAll([failedOn(10, "in_a")], later);
      expect(suspended.status).toBe("suspended");
      expect(applyAll([voided(20, "in_b")], later, suspended).status).toBe("suspended");
      expect(applyAll([voided(20, "in_a")], later, suspended)).toMatchObject({
        status: "active",
        graceEndsAt: null,
      });
      // Another invoice's failure whose grace has not ended yet: past_due until its own end.
      const both = applyAll([failedOn(10, "in_a"), failedOn(2 * 24 * 3600, "in_b")], later);
      expect(both.status).toBe("suspended");
      expect(applyAll([voided(20, "in_a")], later, both)).toMatchObject({
        status: "past_due",
        graceEndsAt: new Date(at(2 * 24 * 3600).getTime() + 7 * DAY_MS),
      });
      // Both over their grace: the other one keeps the suspension.
      const muchLater = new Date(at(10).getTime() + 20 * DAY_MS);
      expect(applyAll([voided(20, "in_a")], muchLater, both).status).toBe("suspended");
    });

    it("cannot withdraw facts of an unknown invoice (recorded before invoices were kept), and a repeated void records nothing", () => {
      const legacy = applyAll([failedOn(10, "")]);
      expect(applyAll([voided(20, "in_a")], at(100), legacy)).toMatchObject({
        status: "past_due",
        paymentRetryCount: 1,
      });
      const once = applyAll([failedOn(10, "in_a"), voided(20, "in_a")]);
      const again = applyStandingFact(once, voided(30, "in_a"), at(100), 7);
      expect(again.recorded).toBe(false);
      expect(again.next).toEqual(once);
    });

    it("does not make a subscription never paid for active", () => {
      const incomplete: StandingFacts = { ...ACTIVE, status: "incomplete" };
      expect(applyAll([failedOn(10, "in_a"), voided(20, "in_a")], at(100), incomplete).status).toBe(
        "incomplete",
      );
    });
  });
});
