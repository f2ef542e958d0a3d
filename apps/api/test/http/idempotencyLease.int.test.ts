import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { createPrismaClient, databasePackageRoot, type PrismaClient } from "@zigznote/database";
import { createMeeting as createMeetingRow, createOrganization } from "@zigznote/database/testing";
import type pg from "pg";
import request from "supertest";
import { requestFingerprint } from "../../src/http/idempotency";
import { claimIdempotencyKey, renewIdempotencyClaim } from "../../src/http/idempotencyStore";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { testDatabaseUrl } from "../support/env";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { fakeRecallEnv } from "../support/recallApp";
import { closeServer, listen } from "../support/recallEvents";
import { keyHash } from "../support/idempotencyKeys";

/**
 * The lease of an `Idempotency-Key` claim (src/http/idempotency.ts): renewed while its request
 * runs, so that a request longer than the lease keeps its key; a dead instance's claim lapses, and
 * a repeat is told how long that takes. Two app instances on one database, a manual clock (the
 * lease is counted in it) and renewals every 50 ms of real time.
 */

const RENEWAL_MS = 50;
const HOUR = 60 * 60 * 1000;
const clock = new ManualClock();
let recall: FakeRecall;
let secondDb: PrismaClient;
let a: TestApp;
let b: TestApp;
let servers: Server[];
let caller: AuthenticatedCaller;
/** IDEMPOTENCY_LOCK_SECONDS, as the apps read it. */
let leaseMs: number;

beforeAll(async () => {
  recall = await startFakeRecall();
  const env = fakeRecallEnv(recall);
  const app = { idempotencyRenewalMs: RENEWAL_MS };
  a = createTestApp({ clock, env, app });
  secondDb = createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
  b = createTestApp({ clock, env, app, db: secondDb });
  servers = [(await listen(a.app)).server, (await listen(b.app)).server];
  const organization = await createOrganization(a.ctx.db, { planSlug: "business" });
  caller = await authHeaderFor(a, { role: "admin", organizationId: organization.id });
  leaseMs = a.ctx.config.IDEMPOTENCY_LOCK_SECONDS * 1000;
});
afterAll(async () => {
  for (const server of servers) await closeServer(server);
  await a.close();
  await b.close();
  await secondDb.$disconnect();
  await recall.close();
});
beforeEach(() => {
  recall.reset();
  recall.setLatency(0);
});

/** The key's `locked_until`, or null (answered, or no row). */
async function lockedUntilOf(key: string): Promise<Date | null> {
  const rows = await a.ctx.db.$queryRaw<{ lockedUntil: Date | null }[]>`
    SELECT locked_until AS "lockedUntil" FROM idempotency_keys
     WHERE organization_id = ${caller.organizationId}::uuid
       AND key_hash = ${keyHash(caller.organizationId, key)}`;
  return rows[0]?.lockedUntil ?? null;
}

/** Polls `condition` every 10 ms for up to `ms`; whether it came true. */
async function becomes(condition: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return condition();
}

/** The statements renewing a claim's lease, sent to PostgreSQL by any pg client of this process. */
function watchRenewals(): { count: () => number; stop: () => void } {
  const pgOfDatabase = createRequire(path.join(databasePackageRoot, "package.json"))(
    "pg",
  ) as typeof pg;
  const prototype = pgOfDatabase.Client.prototype as unknown as {
    query: (...args: unknown[]) => unknown;
  };
  const original = prototype.query;
  let renewals = 0;
  prototype.query = function counting(this: unknown, ...args: unknown[]) {
    const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: string }).text;
    if (/UPDATE idempotency_keys SET locked_until/.test(text ?? "")) renewals += 1;
    return original.apply(this, args);
  };
  return {
    count: () => renewals,
    stop: () => {
      prototype.query = original;
    },
  };
}

let meetings = 0;
/** A new meeting's body (a Zoom link of its own). */
function meetingBody(title: string): { title: string; meetingUrl: string } {
  meetings += 1;
  return {
    title,
    meetingUrl: `https://zoom.us/j/${String(Date.now()).slice(-7)}${String(meetings).padStart(4, "0")}`,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("Idempotency-Key lease of a running request", () => {
  it("renews the claim of a request that runs past its lease: a repeat gets 409 with Retry-After 1, then the first answer, and Recall is asked once", async () => {
    const meeting = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
    recall.setLatency(4_000);
    const key = randomUUID();
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    const send = (server: Server) =>
      request(server).post(url).set(caller.headers).set("Idempotency-Key", key).send({});
    // supertest sends on then(): start it now.
    const first = send(servers[0]!).then((res) => res);
    expect(await becomes(() => recall.requestsTo("POST", "/api/v1/bot/").length > 0, 10_000)).toBe(
      true,
    );
    const claimedUntil = await lockedUntilOf(key);
    expect(claimedUntil).not.toBeNull();

    // The request outlives its lease (a slow provider): its instance renews the claim.
    clock.advance(leaseMs + 1_000);
    const isRenewed = await becomes(
      async () => ((await lockedUntilOf(key))?.getTime() ?? 0) > clock.now().getTime(),
      1_500,
    );
    const meanwhile = await send(servers[1]!);
    expect([meanwhile.status, meanwhile.body.error?.code]).toEqual([409, "IDEMPOTENCY_KEY_IN_USE"]);
    expect(meanwhile.headers["retry-after"]).toBe("1");
    expect(isRenewed).toBe(true);

    const done = await first;
    expect(done.status).toBe(201);
    expect(done.headers["idempotent-replayed"]).toBeUndefined();
    const after = await send(servers[1]!);
    expect(after.status).toBe(201);
    expect(after.headers["idempotent-replayed"]).toBe("true");
    expect(after.body).toEqual(done.body);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(1);
  });

  it("stops renewing once the answer is stored, and renews nothing for a request without a key", async () => {
    const meeting = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
    recall.setLatency(RENEWAL_MS * 6);
    const renewals = watchRenewals();
    try {
      const keyed = await request(servers[0]!)
        .post(`/api/v1/meetings/${meeting.id}/bot`)
        .set(caller.headers)
        .set("Idempotency-Key", randomUUID())
        .send({});
      expect(keyed.status).toBe(201);
      const whileRunning = renewals.count();
      expect(whileRunning).toBeGreaterThan(0);
      await sleep(RENEWAL_MS * 6);
      expect(renewals.count()).toBe(whileRunning);

      const other = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
      const unkeyed = await request(servers[0]!)
        .post(`/api/v1/meetings/${other.id}/bot`)
        .set(caller.headers)
        .send({});
      expect(unkeyed.status).toBe(201);
      expect(renewals.count()).toBe(whileRunning);
    } finally {
      renewals.stop();
    }
  });

  it("renews nothing for POST /api/v1/meetings, whose claim is its transaction's lock", async () => {
    const pgOfDatabase = createRequire(path.join(databasePackageRoot, "package.json"))(
      "pg",
    ) as typeof pg;
    // The organization's row lock held elsewhere keeps the create waiting in its transaction.
    const holder = new pgOfDatabase.Client({ connectionString: testDatabaseUrl });
    await holder.connect();
    const renewals = watchRenewals();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM organizations WHERE id = $1::uuid FOR NO KEY UPDATE", [
        caller.organizationId,
      ]);
      const create = request(servers[0]!)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .set("Idempotency-Key", randomUUID())
        .send(meetingBody("Held"))
        .then((res) => res);
      const isWaiting = await becomes(async () => {
        const waiting = await holder.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        return (waiting.rowCount ?? 0) > 0;
      }, 10_000);
      expect(isWaiting).toBe(true);
      await sleep(RENEWAL_MS * 4);
      await holder.query("COMMIT");
      expect((await create).status).toBe(201);
      expect(renewals.count()).toBe(0);
    } finally {
      renewals.stop();
      await holder.end();
    }
  });

  it("never extends a claim that another request holds now", async () => {
    const key = randomUUID();
    const now = clock.now();
    const ref = {
      organizationId: caller.organizationId,
      keyHash: keyHash(caller.organizationId, key),
    };
    const ownerId = randomUUID();
    const lockedUntil = new Date(now.getTime() + leaseMs);
    expect(
      await claimIdempotencyKey(a.ctx.db, {
        ...ref,
        fingerprint: requestFingerprint("POST", "/api/v1/meetings", {}),
        method: "POST",
        path: "/api/v1/meetings",
        ownerId,
        now,
        lockedUntil,
        expiresAt: new Date(now.getTime() + 24 * HOUR),
      }),
    ).toBe(true);
    const later = new Date(now.getTime() + 2 * leaseMs);
    expect(
      await renewIdempotencyClaim(a.ctx.db, { ...ref, ownerId: randomUUID(), lockedUntil: later }),
    ).toBe(false);
    expect(await lockedUntilOf(key)).toEqual(lockedUntil);
    expect(await renewIdempotencyClaim(a.ctx.db, { ...ref, ownerId, lockedUntil: later })).toBe(
      true,
    );
    expect(await lockedUntilOf(key)).toEqual(later);
  });
});

describe("Retry-After of 409 IDEMPOTENCY_KEY_IN_USE", () => {
  it("is 1 while a claim is fresh, and the seconds until it lapses once its instance stopped renewing it", async () => {
    const key = randomUUID();
    const body = meetingBody(`Standup ${randomUUID()}`);
    // The claim a request leaves when its process is killed before it answers.
    const now = clock.now();
    await a.ctx.db.$executeRaw`
      INSERT INTO idempotency_keys (organization_id, key_hash, fingerprint, method, path, owner_id,
                                    locked_until, created_at, expires_at)
      VALUES (${caller.organizationId}::uuid, ${keyHash(caller.organizationId, key)},
              ${requestFingerprint("POST", "/api/v1/meetings", body)}, 'POST', '/api/v1/meetings',
              ${randomUUID()}::uuid, ${new Date(now.getTime() + leaseMs)}, ${now},
              ${new Date(now.getTime() + 24 * HOUR)})`;
    const send = () =>
      request(servers[1]!)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .set("Idempotency-Key", key)
        .send(body);

    const fresh = await send();
    expect(fresh.status).toBe(409);
    expect(fresh.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    expect(fresh.headers["retry-after"]).toBe("1");

    // Not renewed for more than half the lease: the instance holding it seems gone.
    clock.advance(leaseMs / 2 + 1_000);
    const stale = await send();
    expect(stale.status).toBe(409);
    expect(stale.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    expect(stale.headers["retry-after"]).toBe(String((leaseMs / 2 - 1_000) / 1000));
    expect(stale.body.error.message).toMatch(/no longer renewed/);

    // Then the claim lapses and the repeat runs.
    clock.advance(leaseMs / 2);
    const takenOver = await send();
    expect(takenOver.status).toBe(201);
    expect(takenOver.headers["idempotent-replayed"]).toBeUndefined();
  });
});
