import { suspendExpiredGracePeriods } from "../src/billing";
import { DAY_MS } from "../src/lib/time";
import { createBillingHarness, type BillingHarness } from "./support/billingHarness";

/**
 * Reproduction (not part of `pnpm test`: the name does not match `*.test.ts`) of the flake where
 * billingEventOrder.int.test.ts found its past_due subscription suspended: another suite
 * (gracePeriod, billingRoutes, billingEventOrder.property) runs the suspension job, which acts on
 * the whole database, with its clock moved 8 days ahead, while it runs in the other worker.
 * This does just that for a minute. Run it next to the victim, in two workers:
 *
 *   npx jest -w 2 --testMatch '**\/graceJobCollider.repro.ts' '**\/billingEventOrder.int.test.ts'
 *
 * With one database shared by the workers the victim fails; with one database per worker
 * (test/support/env.ts) it passes.
 */

let h: BillingHarness;
beforeAll(async () => {
  h = await createBillingHarness();
});
afterAll(() => h.close());

it("runs the suspension job 8 days ahead, as other suites do, for a minute", async () => {
  const until = Date.now() + 60_000;
  let runs = 0;
  while (Date.now() < until) {
    await suspendExpiredGracePeriods(
      { db: h.db, notices: h.notices },
      { now: new Date(Date.now() + 8 * DAY_MS) },
    );
    runs += 1;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  expect(runs).toBeGreaterThan(0);
}, 120_000);
