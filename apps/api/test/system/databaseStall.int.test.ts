import type { Server } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import {
  createPrismaClient,
  executeStatement,
  sqlTransaction,
  type PrismaClient,
} from "@zigznote/database";
import { createMeeting, uniqueSuffix } from "@zigznote/database/testing";
import { loadConfig } from "../../src/config";
import { databaseClientOptions } from "../../src/server";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { clerkUserData } from "../support/clerkFixtures";
import { testDatabaseUrl } from "../support/env";
import { createTestApp, type TestApp } from "../support/helpers";
import { closeServer, listen } from "../support/recallEvents";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy";
import { newSvixSecret, svixHeaders } from "../support/webhookSigning";

/**
 * A database that stops answering (a TCP proxy between the app and PostgreSQL holds every byte):
 * requests and webhooks fail fast with 503 (a provider retries it), and the instance serves
 * again, without a restart, once bytes flow.
 */

const POOL_SIZE = 2; // small, so that a connection lost to a stall shows as an exhausted pool
const secret = newSvixSecret();
const env = {
  DATABASE_POOL_SIZE: String(POOL_SIZE),
  // Small, so that the test is quick; not so small that a busy machine trips them when healthy.
  DATABASE_STATEMENT_TIMEOUT_MS: "1000",
  DATABASE_POOL_TIMEOUT_MS: "2000",
  CLERK_WEBHOOK_SECRET: secret,
};

let proxy: TcpProxy;
let db: PrismaClient;
/** Straight to PostgreSQL, not through the proxy: it answers while the app's database stalls. */
let direct: PrismaClient;
let testApp: TestApp;
let server: Server;
let baseUrl: string;
let caller: AuthenticatedCaller;
let meetingId: string;

beforeAll(async () => {
  const target = new URL(testDatabaseUrl);
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  db = createPrismaClient(proxy.urlFor(testDatabaseUrl), databaseClientOptions(loadConfig(env)));
  direct = createPrismaClient(testDatabaseUrl);
  testApp = createTestApp({ db, env });
  ({ server, url: baseUrl } = await listen(testApp.app));
  caller = await authHeaderFor(testApp);
  meetingId = (await createMeeting(db, { organizationId: caller.organizationId })).id;
});
// A failed test must not leave requests (or the pool) waiting on held bytes.
afterEach(() => proxy.resume());
afterAll(async () => {
  await closeServer(server);
  await testApp.close();
  // Sockets first: with a connection lost to a stall (the defect), the pool would never end.
  await proxy.close();
  await Promise.race([db.$disconnect(), delay(5_000)]);
  await direct.$disconnect();
});

interface Answer {
  status: number;
  retryAfter: string | null;
  body: {
    error?: { code: string; message: string };
    requestId?: string;
    data?: Array<{ id: string }>;
    duplicate?: boolean;
  };
}

async function get(path: string): Promise<Answer> {
  const response = await fetch(`${baseUrl}${path}`, { headers: caller.headers });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Answer["body"],
  };
}

/** A signed Clerk `user.created` (handled in a transaction); retries carry the same message id. */
function userCreated(): { msgId: string; clerkId: string; body: string } {
  const clerkId = `user_${uniqueSuffix()}`;
  const now = Date.now();
  const event = {
    data: clerkUserData({
      id: clerkId,
      email: `${clerkId}@example.test`,
      firstName: "Ada",
      lastName: "L",
      createdAt: now,
      updatedAt: now,
    }),
    object: "event",
    type: "user.created",
    timestamp: now,
    instance_id: "ins_test",
  };
  return { msgId: `msg_${uniqueSuffix()}`, clerkId, body: JSON.stringify(event) };
}

async function deliver(event: { msgId: string; body: string }): Promise<Answer> {
  const response = await fetch(`${baseUrl}/webhooks/clerk`, {
    method: "POST",
    headers: svixHeaders(secret, event.msgId, event.body),
    body: event.body,
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Answer["body"],
  };
}

/**
 * One statement per pooled connection at once, each in a transaction of its own: a connection
 * handed back with a stalled transaction still open would answer with that transaction's start.
 */
async function expectEveryConnectionInItsOwnTransaction(): Promise<void> {
  const rows = await Promise.all(
    Array.from(
      { length: POOL_SIZE },
      () => db.$queryRaw<{ isOwnTransaction: boolean }[]>`
        SELECT now() = statement_timestamp() AS "isOwnTransaction"`,
    ),
  );
  expect(rows.map(([row]) => row?.isOwnTransaction)).toEqual(Array(POOL_SIZE).fill(true));
}

const databaseUnavailable = {
  error: { code: "DATABASE_UNAVAILABLE", message: expect.any(String), details: {} },
  requestId: expect.any(String),
};

/** Every connection of the pool open and idle, as on a busy instance. */
async function warmPool(): Promise<void> {
  const warm = await Promise.all(Array.from({ length: POOL_SIZE }, () => get("/api/v1/meetings")));
  expect(warm.map((answer) => answer.status)).toEqual(Array(POOL_SIZE).fill(200));
}

async function countUsers(clerkId: string): Promise<number> {
  return direct.user.count({ where: { clerkId } });
}

describe("a database that stops answering", () => {
  it("answers 503 DATABASE_UNAVAILABLE (webhooks too) while bytes are held, and serves again when they flow", async () => {
    await warmPool();

    proxy.pause();
    const event = userCreated();
    // More requests than connections: some wait for a statement, the others for a connection.
    const [meetings, me, delivery, ...more] = await Promise.all([
      get("/api/v1/meetings"),
      get("/api/v1/me"),
      deliver(event),
      ...Array.from({ length: POOL_SIZE + 1 }, () => get("/api/v1/meetings")),
    ]);
    // The delivery too: a provider retries any 5xx, and this one does not claim that nothing
    // was recorded (see the next test).
    for (const answer of [meetings, me, delivery, ...more]) {
      expect(answer.status).toBe(503);
      expect(answer.body).toEqual(databaseUnavailable);
      expect(answer.retryAfter).toMatch(/^\d+$/);
    }

    proxy.resume();
    const [meetingsAgain, meAgain, ...burst] = await Promise.all([
      get("/api/v1/meetings"),
      get("/api/v1/me"),
      ...Array.from({ length: POOL_SIZE * 2 }, () => get("/api/v1/meetings")),
    ]);
    expect(meetingsAgain.status).toBe(200);
    expect(meetingsAgain.body.data?.map((meeting) => meeting.id)).toContain(meetingId);
    expect(meAgain.status).toBe(200);
    expect(burst.map((answer) => answer.status)).toEqual(Array(POOL_SIZE * 2).fill(200));

    // The delivery's statement, if it had one under way, may have been lost with its connection
    // or may have reached the database once bytes flowed (which of the two depends on whether the
    // proxy saw the connection close before it resumed). Either way the event takes effect once.
    const redelivery = await deliver(event);
    expect(redelivery.status).toBe(200);
    expect([undefined, true]).toContain(redelivery.body.duplicate);
    expect(await countUsers(event.clerkId)).toBe(1);
  }, 20_000);

  it("takes an event once when the statement of a delivery that gave up reaches the database later: the retry answers duplicate", async () => {
    await warmPool();

    // The delivery's one statement (the claim and the user's upsert) is sent and held; the
    // client gives up on it (503) and closes the connection, and the bytes arrive afterwards.
    proxy.pause({ deliverAbandoned: true });
    const event = userCreated();
    const delivery = await deliver(event);
    expect(delivery.status).toBe(503);
    expect(delivery.body).toEqual(databaseUnavailable);
    expect(await countUsers(event.clerkId)).toBe(0);

    proxy.resume();
    const deadline = Date.now() + 5_000;
    while ((await countUsers(event.clerkId)) === 0 && Date.now() < deadline) await delay(25);
    expect(await countUsers(event.clerkId)).toBe(1);

    const redelivery = await deliver(event);
    expect(redelivery.status).toBe(200);
    expect(redelivery.body).toEqual({ received: true, duplicate: true });
    expect(await countUsers(event.clerkId)).toBe(1);
    const claims = await direct.processedWebhook.count({
      where: { provider: "clerk", eventId: event.msgId },
    });
    expect(claims).toBe(1);
  }, 20_000);

  it("discards a connection whose transaction stalled: none is lost, none is reused mid-transaction", async () => {
    // One stall inside an open transaction per pooled connection: a connection kept checked
    // out (or handed back with its transaction open) would show below.
    for (let round = 0; round < POOL_SIZE; round += 1) {
      await expect(
        db.$transaction(async (tx) => {
          await tx.$queryRaw`SELECT 1`;
          proxy.pause();
          await tx.$queryRaw`SELECT 1`;
        }),
      ).rejects.toThrow("Query read timeout");
      proxy.resume();
    }

    await expectEveryConnectionInItsOwnTransaction();
    expect((await get("/api/v1/meetings")).status).toBe(200);
  }, 20_000);

  it("discards a connection whose bracket round trip (BEGIN with a claim, an answer with COMMIT) stalled", async () => {
    const table = `stall_${uniqueSuffix().replace(/\W/g, "_")}`;
    await db.$executeRawUnsafe(`CREATE TABLE ${table} (id int PRIMARY KEY)`);
    const insert = (id: number) => ({
      text: `INSERT INTO ${table} (id) VALUES ($1)`,
      values: [id],
    });
    // Each side stalled twice, as runStatementBatch sends it: the read timeout fails the write.
    for (let round = 0; round < POOL_SIZE * 2; round += 1) {
      const isFirst = round % 2 === 0;
      // A connection open and idle in the pool, so that the stall meets the batch, not a connect.
      await db.$queryRaw`SELECT 1`;
      if (isFirst) proxy.pause();
      await expect(
        sqlTransaction(
          db,
          async (tx) => {
            await executeStatement(tx, `INSERT INTO ${table} (id) VALUES ($1)`, [100 + round]);
            if (!isFirst) proxy.pause();
            return round;
          },
          isFirst ? { firstStatement: insert(round) } : { lastStatement: () => insert(round) },
        ),
      ).rejects.toThrow("Query read timeout");
      proxy.resume();
    }
    // A stalled claim stopped the write before its work; a stalled COMMIT may still have been
    // carried out once the bytes flowed (the client cannot know: the caller got a 503, and a
    // repeat with its key replays what committed), but the write and its answer went together.
    const ids = (
      await db.$queryRawUnsafe<{ id: number }[]>(`SELECT id FROM ${table} ORDER BY id`)
    ).map((row) => row.id);
    for (let round = 0; round < POOL_SIZE * 2; round += 1) {
      if (round % 2 === 0) expect(ids.filter((id) => id % 100 === round)).toEqual([]);
      else expect(ids.includes(round)).toBe(ids.includes(100 + round));
    }
    await expectEveryConnectionInItsOwnTransaction();
    // And the pool serves bracketed writes again.
    await sqlTransaction(db, () => Promise.resolve(0), {
      firstStatement: insert(1000),
      lastStatement: () => insert(1001),
    });
    const { 0: after } = await db.$queryRawUnsafe<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM ${table} WHERE id >= 1000`,
    );
    expect(after?.n).toBe(2);
  }, 40_000);
});
