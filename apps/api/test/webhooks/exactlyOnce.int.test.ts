import { createPrismaClient } from "@zigznote/database";
import { uniqueSuffix } from "@zigznote/database/testing";
import {
  checkAndMarkProcessed,
  cleanupOldWebhooks,
  isProcessed,
  processWebhookOnce,
  WebhookInProgressError,
} from "../../src/webhooks";
import { ConfigError, loadConfig } from "../../src/config";
import { testDatabaseUrl } from "../support/env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 20 });
afterAll(() => db.$disconnect());

const provider = () => `test-${uniqueSuffix()}`;

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Resolves once a backend waits for a lock in its claim (the duplicate behind the first). */
async function waitForLockWaiter(): Promise<void> {
  for (;;) {
    const rows = await db.$queryRaw<unknown[]>`
      SELECT 1 FROM pg_stat_activity
      WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO processed_webhooks%'`;
    if (rows.length > 0) return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("checkAndMarkProcessed", () => {
  it("returns true for exactly one of 20 concurrent callers", async () => {
    const p = provider();
    const results = await Promise.all(
      Array.from({ length: 20 }, () => checkAndMarkProcessed(db, p, "evt_1", "x.y")),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await db.processedWebhook.count({ where: { provider: p } })).toBe(1);
  });

  it("keeps providers apart", async () => {
    expect(await checkAndMarkProcessed(db, provider(), "evt_same", "a")).toBe(true);
    expect(await checkAndMarkProcessed(db, provider(), "evt_same", "a")).toBe(true);
  });
});

describe("isProcessed", () => {
  it("reports only recorded events and writes nothing", async () => {
    const p = provider();
    expect(await isProcessed(db, p, "evt_1")).toBe(false);
    expect(await db.processedWebhook.count({ where: { provider: p } })).toBe(0);
    await checkAndMarkProcessed(db, p, "evt_1", "a");
    expect(await isProcessed(db, p, "evt_1")).toBe(true);
  });
});

describe("cleanupOldWebhooks", () => {
  it("removes exactly the records older than the given days", async () => {
    // A "now" long past makes every other suite's records younger than the cutoff, so only ours
    // can be old: the count returned is exact. Other suites stamp theirs today, or on a past day
    // of their own from 2000 on (adminDisplay's clock, whose Clerk webhooks are recorded then).
    const now = new Date(Date.UTC(1975, 0, 31));
    const day = 86_400_000;
    const p = provider();
    const ages = { old1: 45, old2: 31, edge: 30, young: 29, fresh: 0 };
    for (const [id, days] of Object.entries(ages)) {
      await checkAndMarkProcessed(db, p, id, "a", new Date(now.getTime() - days * day));
    }
    // The boundary itself is kept ("older than"): a record exactly 30 days old stays.
    const removed = await cleanupOldWebhooks(db, 30, now);
    expect(removed).toBe(2);
    const left = await db.processedWebhook.findMany({ where: { provider: p } });
    expect(left.map((row) => row.eventId).sort()).toEqual(["edge", "fresh", "young"]);
    expect(await cleanupOldWebhooks(db, 30, now)).toBe(0);
  });

  it("cannot be configured to forget an event within the providers' retry windows", async () => {
    // Svix retries for about 5 days: a record deleted before then turns its late retry into a
    // second application of the event.
    for (const days of ["1", "3", "5", "6"]) {
      expect(() => loadConfig({ WEBHOOK_RETENTION_DAYS: days })).toThrow(ConfigError);
    }
    const retentionDays = loadConfig({}).WEBHOOK_RETENTION_DAYS;
    const now = new Date(Date.UTC(1975, 2, 1));
    const p = provider();
    await checkAndMarkProcessed(db, p, "msg_late", "a", now);
    // The daily job, the last time before Svix's final retry (5 days on).
    await cleanupOldWebhooks(db, retentionDays, new Date(now.getTime() + 5 * 86_400_000));
    expect(await checkAndMarkProcessed(db, p, "msg_late", "a", now)).toBe(false);
  });
});

describe("processWebhookOnce", () => {
  it("records the event with the handler's effects, then reports duplicates", async () => {
    const claim = { provider: provider(), eventId: "evt_1", eventType: "a" };
    let runs = 0;
    const handler = () => {
      runs += 1;
      return Promise.resolve(runs);
    };
    expect(await processWebhookOnce(db, claim, handler)).toEqual({
      status: "processed",
      result: 1,
    });
    expect(await processWebhookOnce(db, claim, handler)).toEqual({ status: "duplicate" });
    expect(runs).toBe(1);
  });

  it("rolls the claim back with a failing handler, so the retry is processed", async () => {
    const claim = { provider: provider(), eventId: "evt_1", eventType: "a" };
    const clerkId = `user_${uniqueSuffix()}`;
    await expect(
      processWebhookOnce(db, claim, async (tx) => {
        await tx.user.create({ data: { clerkId } });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await isProcessed(db, claim.provider, claim.eventId)).toBe(false);
    expect(await db.user.count({ where: { clerkId } })).toBe(0);

    const retry = await processWebhookOnce(db, claim, async (tx) => {
      await tx.user.create({ data: { clerkId } });
    });
    expect(retry.status).toBe("processed");
    expect(await db.user.count({ where: { clerkId } })).toBe(1);
  });

  it("makes a concurrent duplicate wait and then report the committed first delivery", async () => {
    const claim = { provider: provider(), eventId: "evt_1", eventType: "a" };
    const gate = deferred();
    const entered = deferred();
    const handled: string[] = [];
    const first = processWebhookOnce(db, claim, async () => {
      handled.push("first");
      entered.resolve();
      await gate.promise;
    });
    await entered.promise; // the first delivery holds the claim
    const second = processWebhookOnce(db, claim, () => {
      handled.push("second");
      return Promise.resolve();
    });
    await waitForLockWaiter();
    gate.resolve();
    expect((await first).status).toBe("processed");
    expect((await second).status).toBe("duplicate");
    expect(handled).toEqual(["first"]);
  });

  it("lets a waiting duplicate process the event when the first delivery fails", async () => {
    const claim = { provider: provider(), eventId: "evt_1", eventType: "a" };
    const gate = deferred();
    const entered = deferred();
    const first = processWebhookOnce(db, claim, async () => {
      entered.resolve();
      await gate.promise;
      throw new Error("first failed");
    });
    const firstOutcome = first.catch((error: Error) => error.message);
    await entered.promise; // the first delivery holds the claim
    const second = processWebhookOnce(db, claim, () => Promise.resolve("second"));
    await waitForLockWaiter();
    gate.resolve();
    expect(await firstOutcome).toBe("first failed");
    expect(await second).toEqual({ status: "processed", result: "second" });
    expect(await db.processedWebhook.count({ where: { provider: claim.provider } })).toBe(1);
  });

  it("answers WebhookInProgressError when the first delivery holds the claim too long", async () => {
    const claim = { provider: provider(), eventId: "evt_1", eventType: "a" };
    const gate = deferred();
    const entered = deferred();
    const first = processWebhookOnce(db, claim, () => {
      entered.resolve();
      return gate.promise;
    });
    await entered.promise; // the first delivery holds the claim
    await expect(
      processWebhookOnce(db, claim, () => Promise.resolve(), { lockTimeoutMs: 50 }),
    ).rejects.toBeInstanceOf(WebhookInProgressError);
    gate.resolve();
    expect((await first).status).toBe("processed");
  });
});
