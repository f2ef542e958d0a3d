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
});
