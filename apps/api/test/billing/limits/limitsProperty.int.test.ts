import { createPrismaClient, type Prisma, type PrismaClient } from "@zigznote/database";
import { createMeeting as createMeetingRow, createOrganization } from "@zigznote/database/testing";
import { isAppError } from "@zigznote/shared";
import fc from "fast-check";
import { checkPlanViolations, guardWrite, type ViolationSettings } from "../../../src/billing";
import type { WriteGuard } from "../../../src/http/auth";
import { ManualClock } from "../../../src/lib/clock";
import { createMeeting, deleteMeeting, type MeetingDeps } from "../../../src/meetings";
import { countMeetingsThisMonth } from "../../../src/recordings";
import { testDatabaseUrl } from "../../support/env";
import { createTestApp, type TestApp } from "../../support/helpers";

/**
 * Issue 22, as a property: whatever the interleaving of meeting creates, deletes and plan
 * changes, on two "instances" (two clients, two pools, one database), no commit takes the
 * month's meetings over the limit in force.
 *
 * Each operation runs through the real code (createMeeting with billing's guardWrite, deleteMeeting,
 * a plan change: the organization's plan updated and checkPlanViolations run in one transaction,
 * as every plan change records it), started after a generated delay, with generated pauses
 * inside its transaction: before the guard, between the guard and the insert, before the
 * commit. So the database sees the operations interleave in generated ways.
 *
 * The observer sees every commit in order: a transaction takes a test-side mutex when its work
 * is done and releases it once it has committed and the observer has read the month's count
 * and the limit on a connection of its own. No other transaction commits in between (deletes
 * commit on their own, but they change neither: a deleted meeting counts for its month), so
 * each reading is the state that commit left. The property over the readings:
 * - after a create's commit, count <= limit (the plan's limit at that commit; null: unlimited);
 * - a plan change's commit leaves the count as it was (a downgrade may leave it over the new
 *   limit: that is a recorded violation, and no create passes until the count fits again);
 * - in the end the month has exactly the meetings that were answered "created".
 */

const TEST_PLANS = [
  { slug: "prop_limit_2", limit: 2 },
  { slug: "prop_limit_3", limit: 3 },
  { slug: "prop_limit_5", limit: 5 },
  { slug: "prop_unlimited", limit: null },
] as const;
type PlanSlug = (typeof TEST_PLANS)[number]["slug"];
const LIMIT_OF = new Map<string, number | null>(TEST_PLANS.map((p) => [p.slug, p.limit]));

type Operation =
  | { kind: "create"; instance: number; startMs: number; pausesMs: [number, number, number] }
  | { kind: "delete"; instance: number; startMs: number; target: number }
  | { kind: "plan"; instance: number; startMs: number; planSlug: PlanSlug; pauseMs: number };

const pause = fc.integer({ min: 0, max: 6 });
const operation: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("create" as const),
      instance: fc.integer({ min: 0, max: 1 }),
      startMs: fc.integer({ min: 0, max: 15 }),
      pausesMs: fc.tuple(pause, pause, pause),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("delete" as const),
      instance: fc.integer({ min: 0, max: 1 }),
      startMs: fc.integer({ min: 0, max: 15 }),
      target: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("plan" as const),
      instance: fc.integer({ min: 0, max: 1 }),
      startMs: fc.integer({ min: 0, max: 15 }),
      planSlug: fc.constantFrom(...TEST_PLANS.map((p) => p.slug)),
      pauseMs: pause,
    }),
  },
);

const scenario = fc.record({
  initialPlan: fc.constantFrom(...TEST_PLANS.map((p) => p.slug)),
  initialMeetings: fc.integer({ min: 0, max: 5 }),
  operations: fc.array(operation, { minLength: 4, maxLength: 16 }),
});

/** A lock that hands itself over in order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => next);
    return previous.then(() => release);
  }
}

interface Reading {
  after: "create" | "plan";
  count: number;
  limit: number | null;
}

/** The test's plans and the organizations on them (the test databases outlive a run). */
async function dropTestPlans(db: PrismaClient): Promise<void> {
  const slugs = TEST_PLANS.map((p) => p.slug);
  await db.organization.deleteMany({ where: { planSlug: { in: slugs } } });
  await db.plan.deleteMany({ where: { slug: { in: slugs } } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("plan limits over random interleavings (property)", () => {
  const clock = new ManualClock(new Date("2026-11-15T12:00:00.000Z"));
  let clients: PrismaClient[];
  let observer: PrismaClient;
  let testApp: TestApp;
  /** The real violation rules and outbox (notices of violations are queued as in production). */
  let settings: ViolationSettings;

  beforeAll(async () => {
    clients = [createPrismaClient(testDatabaseUrl), createPrismaClient(testDatabaseUrl)];
    observer = createPrismaClient(testDatabaseUrl, { maxConnections: 1 });
    // What a run that was stopped before its clean-up left.
    await dropTestPlans(observer);
    testApp = createTestApp({ db: clients[0], clock });
    settings = testApp.ctx.modules.billing.deps.settings;
    for (const plan of TEST_PLANS) {
      await observer.plan.upsert({
        where: { slug: plan.slug },
        create: {
          slug: plan.slug,
          name: plan.slug,
          rank: 90,
          maxMeetingsPerMonth: plan.limit,
          maxTeamMembers: null,
          maxStorageBytes: null,
        },
        update: {},
      });
    }
  });
  afterAll(async () => {
    await dropTestPlans(observer);
    await testApp.close();
    await Promise.all([...clients, observer].map((client) => client.$disconnect()));
  });

  it("never lets a commit take the month's meetings over the limit in force", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ initialPlan, initialMeetings, operations }) => {
        const organization = await createOrganization(observer, { planSlug: initialPlan });
        const organizationId = organization.id;
        const meetingIds: string[] = [];
        for (let i = 0; i < initialMeetings; i += 1) {
          const row = await createMeetingRow(observer, { organizationId, createdAt: clock.now() });
          meetingIds.push(row.id);
        }

        const commits = new Mutex();
        const readings: Reading[] = [];
        const observe = async (after: Reading["after"]) => {
          const [count, row] = await Promise.all([
            countMeetingsThisMonth(observer, { organizationId, now: clock.now() }),
            observer.organization.findUniqueOrThrow({
              where: { id: organizationId },
              select: { planSlug: true },
            }),
          ]);
          readings.push({ after, count, limit: LIMIT_OF.get(row.planSlug) ?? null });
        };
        /**
         * `client` whose transactions run `fn`, pause, then commit under the mutex and let the
         * observer read before the next commit.
         */
        const observed = (client: PrismaClient, after: Reading["after"], beforeCommitMs: number) =>
          new Proxy(client, {
            get(target, property, receiver): unknown {
              if (property !== "$transaction") return Reflect.get(target, property, receiver);
              return async <T>(fn: (tx: Prisma.TransactionClient) => Promise<T>) => {
                let release: (() => void) | undefined;
                try {
                  const result = await target.$transaction(
                    async (tx) => {
                      const value = await fn(tx);
                      await sleep(beforeCommitMs);
                      release = await commits.lock();
                      return value;
                    },
                    { maxWait: 20_000, timeout: 20_000 },
                  );
                  await observe(after);
                  return result;
                } finally {
                  release?.();
                }
              };
            },
          });

        let created = 0;
        const run = async (op: Operation) => {
          await sleep(op.startMs);
          const client = clients[op.instance]!;
          if (op.kind === "create") {
            const [beforeGuard, afterGuard, beforeCommit] = op.pausesMs;
            const guard: WriteGuard = async (tx, input) => {
              await sleep(beforeGuard);
              await guardWrite(tx, { ...input, now: input.now ?? clock.now() });
              await sleep(afterGuard);
            };
            const deps: MeetingDeps = {
              db: observed(client, "create", beforeCommit),
              clock,
              guardWrite: guard,
            };
            try {
              const meeting = await createMeeting(deps, {
                organizationId,
                title: "Property",
                meetingUrl: `https://zoom.us/j/${Math.floor(1e10 + Math.random() * 8e10)}`,
              });
              meetingIds.push(meeting.id);
              created += 1;
            } catch (error) {
              if (!(isAppError(error) && error.code === "PLAN_LIMIT_MEETINGS")) throw error;
            }
          } else if (op.kind === "delete") {
            const meetingId = meetingIds[op.target % Math.max(meetingIds.length, 1)];
            if (!meetingId) return;
            await deleteMeeting({ db: client, clock }, { organizationId, meetingId }).catch(
              (error: unknown) => {
                // Deleted by another operation already.
                if (!(isAppError(error) && error.status === 404)) throw error;
              },
            );
          } else {
            await observed(client, "plan", op.pauseMs).$transaction(async (tx) => {
              await tx.organization.update({
                where: { id: organizationId },
                data: { planSlug: op.planSlug },
              });
              await checkPlanViolations({ db: tx, settings }, { organizationId, now: clock.now() });
            });
          }
        };

        await observe("plan"); // the starting state
        const [start] = readings;
        await Promise.all(operations.map(run));

        let previous = start!;
        for (const reading of readings.slice(1)) {
          if (reading.after === "create") {
            expect(reading.count).toBe(previous.count + 1);
            if (reading.limit !== null) expect(reading.count).toBeLessThanOrEqual(reading.limit);
          } else {
            expect(reading.count).toBe(previous.count);
          }
          previous = reading;
        }
        const final = await countMeetingsThisMonth(observer, { organizationId, now: clock.now() });
        expect(final).toBe(initialMeetings + created);
        expect(final).toBe(previous.count);
      }),
      { numRuns: 30 },
    );
  });
});
