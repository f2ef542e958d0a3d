import { createCipheriv, hkdfSync, randomBytes, randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import {
  createPrismaClient,
  databasePackageRoot,
  queryRows,
  sqlTransaction,
  type PrismaClient,
} from "@zigznote/database";
import {
  createMeeting as createMeetingRow,
  createOrganization,
  uniqueSuffix,
} from "@zigznote/database/testing";
import type pg from "pg";
import request from "supertest";
import { requestFingerprint } from "../../src/http/idempotency";
import { answerStatement, claimIdempotencyKey } from "../../src/http/idempotencyStore";
import { runJob } from "../../src/jobs";
import { createMeeting } from "../../src/meetings";
import { authHeaderFor, signClerkToken, type AuthenticatedCaller } from "../support/auth";
import { testDatabaseUrl } from "../support/env";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";
import { fakeRecallEnv } from "../support/recallApp";
import { closeServer, listen } from "../support/recallEvents";
import { keyHash } from "../support/idempotencyKeys";

/**
 * `Idempotency-Key` (src/http/idempotency.ts): two app instances on one database, as behind a
 * load balancer; every repeat of a write goes to either.
 */

const HOUR = 60 * 60 * 1000;
const clock = new ManualClock();
let recall: FakeRecall;
let secondDb: PrismaClient;
let a: TestApp;
let b: TestApp;
let servers: Server[];
let caller: AuthenticatedCaller;

beforeAll(async () => {
  recall = await startFakeRecall();
  const env = fakeRecallEnv(recall);
  a = createTestApp({ clock, env });
  secondDb = createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
  b = createTestApp({ clock, env, db: secondDb });
  servers = [(await listen(a.app)).server, (await listen(b.app)).server];
  caller = await authHeaderFor(a, { role: "admin" });
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

let counter = 0;
function meetingBody(): { title: string; meetingUrl: string } {
  counter += 1;
  return {
    title: `Standup ${counter}`,
    meetingUrl: `https://zoom.us/j/${String(Date.now()).slice(-7)}${String(counter).padStart(4, "0")}`,
  };
}

/** A caller of an organization of its own without a meetings limit (others' counts stay as they are). */
async function callerOfOwnOrganization(): Promise<AuthenticatedCaller> {
  const organization = await createOrganization(a.ctx.db, { planSlug: "business" });
  return authHeaderFor(a, { organizationId: organization.id });
}

function meetingsOf(organizationId: string, title: string): Promise<number> {
  return a.ctx.db.meeting.count({ where: { organizationId, title } });
}

/** `POST /api/v1/meetings` by `caller` with the Idempotency-Key `key`, to `server`. */
function keyedCreate(caller: AuthenticatedCaller, key: string, body: object, server: Server) {
  return request(server)
    .post("/api/v1/meetings")
    .set(caller.headers)
    .set("Idempotency-Key", key)
    .send(body);
}

describe("Idempotency-Key on POST /api/v1/meetings", () => {
  it("replays the first answer to a repeat, on either instance, without writing again", async () => {
    const key = randomUUID();
    const body = meetingBody();
    const first = await keyedCreate(caller, key, body, servers[0]!);
    expect(first.status).toBe(201);
    expect(first.headers["idempotent-replayed"]).toBeUndefined();
    expect(first.headers.location).toBe(`/api/v1/meetings/${first.body.id}`);

    // The same body with its keys in another order and other spacing is the same request.
    const repeat = await request(servers[1]!)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .set("Content-Type", "application/json")
      .send(
        `{ "meetingUrl": ${JSON.stringify(body.meetingUrl)},  "title": ${JSON.stringify(body.title)} }`,
      );
    expect(repeat.status).toBe(201);
    expect(repeat.headers["idempotent-replayed"]).toBe("true");
    expect(repeat.headers.location).toBe(first.headers.location);
    expect(repeat.headers["content-type"]).toBe(first.headers["content-type"]);
    expect(repeat.headers.etag).toBe(first.headers.etag);
    expect(repeat.body).toEqual(first.body);
    expect(await meetingsOf(caller.organizationId, body.title)).toBe(1);
  });

  it("stores the answer in the transaction that inserts the meeting", async () => {
    const key = randomUUID();
    const res = await keyedCreate(caller, key, meetingBody(), servers[0]!);
    expect(res.status).toBe(201);
    // One transaction wrote both rows: they carry the same transaction id.
    const rows = await a.ctx.db.$queryRaw<{ meeting: string; answer: string }[]>`
      SELECT m.xmin::text AS meeting, k.xmin::text AS answer
        FROM meetings m, idempotency_keys k
       WHERE m.id = ${res.body.id}::uuid AND k.organization_id = ${caller.organizationId}::uuid
         AND k.key_hash = ${keyHash(caller.organizationId, key)} AND k.response_status = 201`;
    expect(rows).toHaveLength(1);
    expect(rows[0]!.meeting).toBe(rows[0]!.answer);
  });

  it("keeps no meeting when the answer cannot be stored (the hook fails, the insert rolls back)", async () => {
    const title = `Rolled back ${randomUUID()}`;
    await expect(
      createMeeting(
        a.ctx.modules.meetings.deps,
        {
          organizationId: caller.organizationId,
          title,
          meetingUrl: meetingBody().meetingUrl,
        },
        // The answer's statement fails with COMMIT's round trip: nothing is committed.
        {
          lastStatement: () => ({
            text: "SELECT $1::text::boolean",
            values: ["the answer could not be stored"],
          }),
        },
      ),
    ).rejects.toThrow("the answer could not be stored");
    expect(await meetingsOf(caller.organizationId, title)).toBe(0);
  });

  it("runs the handler once for 12 concurrent requests with one key across two instances", async () => {
    const key = randomUUID();
    const body = meetingBody();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => keyedCreate(caller, key, body, servers[i % 2]!)),
    );
    expect(await meetingsOf(caller.organizationId, body.title)).toBe(1);
    const fresh = answers.filter((r) => r.status === 201 && !r.headers["idempotent-replayed"]);
    expect(fresh).toHaveLength(1);
    for (const answer of answers) {
      if (answer.status === 201) {
        expect(answer.body).toEqual(fresh[0]!.body);
      } else {
        expect(answer.status).toBe(409);
        expect(answer.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
        expect(answer.headers["retry-after"]).toBe("1");
      }
    }
  });

  it("answers 422 IDEMPOTENCY_KEY_REUSED to the same key with another body, path or method", async () => {
    const key = randomUUID();
    const first = await keyedCreate(caller, key, meetingBody(), servers[0]!);
    expect(first.status).toBe(201);
    const otherBody = await keyedCreate(caller, key, meetingBody(), servers[1]!);
    expect(otherBody.status).toBe(422);
    expect(otherBody.body.error).toMatchObject({
      code: "IDEMPOTENCY_KEY_REUSED",
      details: { firstRequest: { method: "POST", path: "/api/v1/meetings" } },
    });
    const otherRoute = await request(servers[0]!)
      .patch(`/api/v1/meetings/${first.body.id}`)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({ title: "Renamed" });
    expect(otherRoute.status).toBe(422);
    expect((await a.ctx.db.meeting.findUniqueOrThrow({ where: { id: first.body.id } })).title).toBe(
      first.body.title,
    );
  });

  it("does not store a refused request (input, role): the corrected retry runs", async () => {
    const key = randomUUID();
    const body = meetingBody();
    const refused = await keyedCreate(
      caller,
      key,
      { ...body, meetingUrl: "not a link" },
      servers[0]!,
    );
    expect(refused.status).toBe(400);
    const { title: _title, ...untitled } = body;
    const invalid = await keyedCreate(caller, key, untitled, servers[1]!);
    expect(invalid.status).toBe(400);
    const noScope = await authHeaderFor(a, {
      role: "member",
      organizationId: caller.organizationId,
    });
    const forbidden = await request(servers[1]!)
      .post("/api/v1/api-keys")
      .set(noScope.headers)
      .set("Idempotency-Key", key)
      .send({ name: "ci", scopes: ["meetings:read"] });
    expect(forbidden.status).toBe(403);

    const corrected = await keyedCreate(caller, key, body, servers[1]!);
    expect(corrected.status).toBe(201);
    expect(corrected.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(caller.organizationId, body.title)).toBe(1);
  });

  it("scopes keys to the organization: another organization's same key is its own", async () => {
    const key = randomUUID();
    const other = await authHeaderFor(a, { role: "admin" });
    const body = meetingBody();
    const mine = await keyedCreate(caller, key, body, servers[0]!);
    const theirs = await keyedCreate(other, key, body, servers[0]!);
    expect([mine.status, theirs.status]).toEqual([201, 201]);
    expect(theirs.headers["idempotent-replayed"]).toBeUndefined();
    expect(theirs.body.id).not.toBe(mine.body.id);
    expect(await meetingsOf(other.organizationId, body.title)).toBe(1);
  });

  it("refuses a key that is empty, too long or not printable ASCII", async () => {
    for (const key of ["", "k".repeat(256), "clé"]) {
      const res = await keyedCreate(caller, key, meetingBody(), servers[0]!);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("INVALID_IDEMPOTENCY_KEY");
    }
  });
});

describe("Idempotency-Key claimed in the write's own transaction (POST /api/v1/meetings)", () => {
  /** The pg the database package (and Prisma's adapter) uses. */
  const pgOfDatabase = () =>
    createRequire(path.join(databasePackageRoot, "package.json"))("pg") as typeof pg;

  /**
   * Messages sent to PostgreSQL during `work`, over every pg client in this process, and how many
   * transactions they committed.
   */
  async function countQueries(
    work: () => Promise<unknown>,
  ): Promise<{ messages: number; commits: number }> {
    const prototype = pgOfDatabase().Client.prototype as unknown as {
      query: (...args: unknown[]) => unknown;
    };
    const original = prototype.query;
    const counted = { messages: 0, commits: 0 };
    prototype.query = function counting(this: unknown, ...args: unknown[]) {
      counted.messages += 1;
      const text = typeof args[0] === "string" ? args[0] : (args[0] as { text?: string }).text;
      counted.commits += (text ?? "").match(/\bCOMMIT\b/gi)?.length ?? 0;
      return original.apply(this, args);
    };
    try {
      await work();
    } finally {
      prototype.query = original;
    }
    return counted;
  }

  /** A connection of its own to the test database (another instance's, or a dying one's). */
  async function connect(): Promise<pg.Client> {
    const client = new (pgOfDatabase().Client)({ connectionString: testDatabaseUrl });
    await client.connect();
    return client;
  }

  /**
   * A connection in a transaction holding the advisory lock a claim of `key` takes in its
   * transaction (idempotencyStore.ts): what a concurrent request with that key holds.
   */
  async function holdingKeyLock(organizationId: string, key: string): Promise<pg.Client> {
    const client = await connect();
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [
      keyHash(organizationId, key).readBigInt64BE(0).toString(),
    ]);
    return client;
  }

  let writer: AuthenticatedCaller;
  beforeAll(async () => {
    writer = await callerOfOwnOrganization();
  });

  function post(key: string, body: object, server = servers[0]!) {
    return keyedCreate(writer, key, body, server);
  }

  it("costs the write no round trip and no commit of its own: the claim goes with BEGIN, the answer with COMMIT", async () => {
    const writer = await callerOfOwnOrganization();
    const send = (key?: string) => {
      const call = request(servers[0]!).post("/api/v1/meetings").set(writer.headers);
      return (key ? call.set("Idempotency-Key", key) : call).send(meetingBody());
    };
    // Warm: the caller's key row and plan are cached after the first requests.
    await send();
    await send(randomUUID());
    const without = await countQueries(async () => expect((await send()).status).toBe(201));
    const keyed = await countQueries(async () =>
      expect((await send(randomUUID())).status).toBe(201),
    );
    expect(keyed).toEqual(without);
    expect(keyed.commits).toBe(1);
  });

  it("answers 409 while another request holds the key's lock, and runs once it is released", async () => {
    const key = randomUUID();
    const body = meetingBody();
    const other = await holdingKeyLock(writer.organizationId, key);
    try {
      const meanwhile = await post(key, body, servers[1]);
      expect(meanwhile.status).toBe(409);
      expect(meanwhile.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
      expect(meanwhile.headers["retry-after"]).toBe("1");
      expect(await meetingsOf(writer.organizationId, body.title)).toBe(0);
      await other.query("ROLLBACK");
    } finally {
      await other.end();
    }
    const after = await post(key, body);
    expect(after.status).toBe(201);
    expect(after.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(writer.organizationId, body.title)).toBe(1);
  });

  it("leaves nothing behind when the instance dies mid-write: the lock goes with its connection", async () => {
    const key = randomUUID();
    const body = meetingBody();
    const dying = await holdingKeyLock(writer.organizationId, key);
    dying.on("error", () => {});
    expect((await post(key, body)).status).toBe(409);
    // The process is killed: its connection ends without COMMIT or ROLLBACK.
    const [{ pid }] = (await dying.query<{ pid: number }>("SELECT pg_backend_pid() AS pid"))
      .rows as [{ pid: number }];
    await a.ctx.db.$queryRawUnsafe(`SELECT pg_terminate_backend(${pid})`);
    await dying.end().catch(() => {});
    const retried = await post(key, body, servers[1]);
    expect(retried.status).toBe(201);
    expect(retried.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(writer.organizationId, body.title)).toBe(1);
  });

  it("rolls the write back when a request to another route claimed the key during it: one effect, the create answered 422", async () => {
    const writer = await callerOfOwnOrganization();
    const key = randomUUID();
    const body = meetingBody();
    // The organization's row lock held elsewhere stops the create inside its transaction, after
    // its claim's check passed (NO KEY: the claim below may still reference the row).
    const holder = await connect();
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM organizations WHERE id = $1::uuid FOR NO KEY UPDATE", [
        writer.organizationId,
      ]);
      const create = keyedCreate(writer, key, body, servers[0]!).then((res) => res);
      for (let waited = 0; ; waited += 20) {
        const waiting = await holder.query(
          `SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (waiting.rowCount) break;
        if (waited > 10_000) throw new Error("the create never reached the organization's lock");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Meanwhile a DELETE with the same key (another route: it claims by row, as the step does)
      // takes the key.
      const now = clock.now();
      const path = `/api/v1/meetings/${randomUUID()}`;
      const claimed = await claimIdempotencyKey(a.ctx.db, {
        organizationId: writer.organizationId,
        keyHash: keyHash(writer.organizationId, key),
        fingerprint: requestFingerprint("DELETE", path, {}),
        method: "DELETE",
        path,
        ownerId: randomUUID(),
        now,
        lockedUntil: new Date(now.getTime() + 30_000),
        expiresAt: new Date(now.getTime() + 24 * HOUR),
      });
      expect(claimed).toBe(true);
      await holder.query("COMMIT");
      const created = await create;
      expect(created.status).toBe(422);
      expect(created.body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
      expect(created.body.error.details.firstRequest.method).toBe("DELETE");
      expect(
        await a.ctx.db.meeting.count({ where: { organizationId: writer.organizationId } }),
      ).toBe(0);
    } finally {
      await holder.end();
    }
  });

  it("replays a create that used the plan's last meeting, though a new one would now be refused", async () => {
    const organization = await createOrganization(a.ctx.db, { planSlug: "free" });
    const member = await authHeaderFor(a, { organizationId: organization.id });
    for (let i = 0; i < 9; i += 1) {
      await createMeetingRow(a.ctx.db, { organizationId: organization.id, createdAt: clock.now() });
    }
    const key = randomUUID();
    const body = meetingBody();
    const first = await keyedCreate(member, key, body, servers[0]!);
    expect(first.status).toBe(201);
    const repeat = await keyedCreate(member, key, body, servers[1]!);
    expect(repeat.status).toBe(201);
    expect(repeat.headers["idempotent-replayed"]).toBe("true");
    expect(repeat.body).toEqual(first.body);
    const fresh = await request(servers[1]!)
      .post("/api/v1/meetings")
      .set(member.headers)
      .set("Idempotency-Key", randomUUID())
      .send(meetingBody());
    expect(fresh.status).toBe(403);
    expect(await a.ctx.db.meeting.count({ where: { organizationId: organization.id } })).toBe(10);
  });

  it("does not keep billing's refusal in the write's transaction: the retry after an upgrade runs", async () => {
    const organization = await createOrganization(a.ctx.db, { planSlug: "free" });
    const member = await authHeaderFor(a, { organizationId: organization.id });
    for (let i = 0; i < 10; i += 1) {
      await createMeetingRow(a.ctx.db, { organizationId: organization.id, createdAt: clock.now() });
    }
    const key = randomUUID();
    const body = meetingBody();
    const refused = await keyedCreate(member, key, body, servers[0]!);
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("PLAN_LIMIT_MEETINGS");
    await a.ctx.db.organization.update({
      where: { id: organization.id },
      data: { planSlug: "business" },
    });
    const retried = await keyedCreate(member, key, body, servers[1]!);
    expect(retried.status).toBe(201);
    expect(retried.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(organization.id, body.title)).toBe(1);
  });

  it("commits nothing when the answer finds its claim gone (taken over): the write rolls back too", async () => {
    const title = `Not committed ${randomUUID()}`;
    await expect(
      sqlTransaction(
        a.ctx.db,
        (tx) =>
          queryRows(
            tx,
            `INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform)
             VALUES ($1::uuid, $2, 'https://zoom.us/j/1', 'zoom:1', 'zoom') RETURNING id`,
            [caller.organizationId, title],
          ),
        {
          // No such claim: another request took the key over meanwhile.
          lastStatement: () =>
            answerStatement({
              organizationId: caller.organizationId,
              keyHash: keyHash(caller.organizationId, randomUUID()),
              ownerId: randomUUID(),
              status: 201,
              response: Buffer.from("{}"),
            }),
        },
      ),
    ).rejects.toThrow("idempotency claim taken over");
    expect(await meetingsOf(caller.organizationId, title)).toBe(0);
  });
});

describe("Idempotency-Key on the other writes", () => {
  it("stores a 4xx answer: a repeated DELETE of an unknown meeting replays its 404", async () => {
    const key = randomUUID();
    const url = `/api/v1/meetings/${randomUUID()}`;
    const first = await request(servers[0]!)
      .delete(url)
      .set(caller.headers)
      .set("Idempotency-Key", key);
    expect(first.status).toBe(404);
    const repeat = await request(servers[1]!)
      .delete(url)
      .set(caller.headers)
      .set("Idempotency-Key", key);
    expect(repeat.status).toBe(404);
    expect(repeat.headers["idempotent-replayed"]).toBe("true");
    expect(repeat.body).toEqual(first.body);
  });

  it("replays a DELETE's 204 after the meeting is gone", async () => {
    const meeting = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
    const key = randomUUID();
    const url = `/api/v1/meetings/${meeting.id}`;
    const first = await request(servers[0]!)
      .delete(url)
      .set(caller.headers)
      .set("Idempotency-Key", key);
    const repeat = await request(servers[1]!)
      .delete(url)
      .set(caller.headers)
      .set("Idempotency-Key", key);
    expect([first.status, repeat.status]).toEqual([204, 204]);
    expect(repeat.headers["idempotent-replayed"]).toBe("true");
    // Without the key the second DELETE is a 404: the meeting is gone.
    expect((await request(servers[0]!).delete(url).set(caller.headers)).status).toBe(404);
  });

  it("returns a created API key again to a repeat, and stores neither key in clear", async () => {
    const key = `create-ci-key-${randomUUID()}`;
    const body = { name: `ci ${randomUUID()}`, scopes: ["meetings:read"] };
    const first = await request(servers[0]!)
      .post("/api/v1/api-keys")
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send(body);
    const repeat = await request(servers[1]!)
      .post("/api/v1/api-keys")
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send(body);
    expect([first.status, repeat.status]).toEqual([201, 201]);
    expect(repeat.body.key).toBe(first.body.key);
    expect(await a.ctx.db.apiKey.count({ where: { name: body.name } })).toBe(1);
    const stored = await a.ctx.db.$queryRaw<{ row: string }[]>`
      SELECT encode(convert_to(k::text, 'UTF8'), 'escape') AS row FROM idempotency_keys k
       WHERE organization_id = ${caller.organizationId}::uuid`;
    const everything = stored.map((row) => row.row).join("\n");
    const secret = String(first.body.key).split("_").pop()!;
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(key);
    expect(Buffer.from(everything.replace(/\\x/g, ""), "hex").toString("latin1")).not.toContain(
      secret,
    );
  });

  it("answers 409 while a slow bot creation runs, then replays it: Recall is asked once", async () => {
    const meeting = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
    recall.setLatency(2_000);
    const key = randomUUID();
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    // supertest sends on then(): start it now.
    const first = request(servers[0]!)
      .post(url)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({})
      .then((res) => res);
    // The first holds the key once it asks Recall for the bot (a fixed 200 ms pause raced it on
    // a loaded machine: the second request then took the key and the first got the 409).
    const deadline = Date.now() + 10_000;
    while (recall.requestsTo("POST", "/api/v1/bot/").length === 0) {
      if (Date.now() > deadline) throw new Error("the first request never asked Recall");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const meanwhile = await request(servers[1]!)
      .post(url)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({});
    expect(meanwhile.status).toBe(409);
    expect(meanwhile.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    expect(meanwhile.headers["retry-after"]).toBe("1");
    const done = await first;
    expect(done.status).toBe(201);
    const after = await request(servers[1]!)
      .post(url)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({});
    expect(after.status).toBe(201);
    expect(after.headers["idempotent-replayed"]).toBe("true");
    expect(after.body).toEqual(done.body);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(1);
  });

  it("does not store a 5xx: the retry with the same key runs for real", async () => {
    const meeting = await createMeetingRow(a.ctx.db, { organizationId: caller.organizationId });
    recall.failNext({ status: 400, body: { detail: "Recall refuses" } });
    const key = randomUUID();
    const url = `/api/v1/meetings/${meeting.id}/bot`;
    const failed = await request(servers[0]!)
      .post(url)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({});
    expect(failed.status).toBe(502);
    const retried = await request(servers[1]!)
      .post(url)
      .set(caller.headers)
      .set("Idempotency-Key", key)
      .send({});
    expect(retried.status).toBe(201);
    expect(retried.headers["idempotent-replayed"]).toBeUndefined();
  });
});

describe("Idempotency-Key of a platform admin's session without an organization (the console)", () => {
  /** A platform admin's session with no active organization, as the console signs in. */
  function consoleSession(): { Authorization: string } {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: null,
      claims: { metadata: { platformAdmin: true } },
    });
    return { Authorization: `Bearer ${token}` };
  }

  it("replays a repeated action instead of running it again, and keeps the key to that admin", async () => {
    const organization = await createOrganization(a.ctx.db, { planSlug: "free" });
    const url = `/api/v1/admin/organizations/${organization.id}/recheck-violations`;
    const operator = consoleSession();
    const key = randomUUID();
    const send = (headers: { Authorization: string }, server: Server) =>
      request(server)
        .post(url)
        .set(headers)
        .set("Idempotency-Key", key)
        .send({ reason: "customer asked" });
    const first = await send(operator, servers[0]!);
    const repeat = await send(operator, servers[1]!);
    expect([first.status, repeat.status]).toEqual([200, 200]);
    expect(repeat.headers["idempotent-replayed"]).toBe("true");
    expect(repeat.body).toEqual(first.body);
    const audits = await queryRows<{ count: number }>(
      a.ctx.db,
      `SELECT count(*)::int AS count FROM admin_audit_log WHERE target_id = $1`,
      [organization.id],
    );
    expect(audits[0]!.count).toBe(1);
    // Another operator's same key is theirs.
    const other = await send(consoleSession(), servers[0]!);
    expect(other.status).toBe(200);
    expect(other.headers["idempotent-replayed"]).toBeUndefined();
    expect(other.body.auditId).not.toBe(first.body.auditId);
  });
});

describe("abandoned claims and expiry", () => {
  it("lets a repeat take over a claim whose instance died, once its lock is over", async () => {
    const key = randomUUID();
    const body = meetingBody();
    // The claim a request leaves when its process is killed before it answers.
    const now = clock.now();
    await a.ctx.db.$executeRaw`
      INSERT INTO idempotency_keys (organization_id, key_hash, fingerprint, method, path, owner_id,
                                    locked_until, created_at, expires_at)
      VALUES (${caller.organizationId}::uuid, ${keyHash(caller.organizationId, key)},
              ${requestFingerprint("POST", "/api/v1/meetings", body)}, 'POST', '/api/v1/meetings',
              ${randomUUID()}::uuid, ${new Date(now.getTime() + 30_000)}, ${now},
              ${new Date(now.getTime() + 24 * HOUR)})`;
    const send = () => keyedCreate(caller, key, body, servers[1]!);
    const whileLocked = await send();
    expect(whileLocked.status).toBe(409);
    expect(whileLocked.body.error.code).toBe("IDEMPOTENCY_KEY_IN_USE");
    expect(await meetingsOf(caller.organizationId, body.title)).toBe(0);

    // IDEMPOTENCY_LOCK_SECONDS (30) later, never renewed, the claim counts as abandoned.
    clock.advance(31_000);
    const takenOver = await send();
    expect(takenOver.status).toBe(201);
    expect(takenOver.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(caller.organizationId, body.title)).toBe(1);
    expect((await send()).headers["idempotent-replayed"]).toBe("true");
  });

  it("replays an answer stored before today's format (HKDF key, JSON with a base64 body)", async () => {
    const who = await callerOfOwnOrganization();
    const key = randomUUID();
    const body = meetingBody();
    // The answer a create sent then (made here by a create without a key).
    const first = await request(servers[0]!)
      .post("/api/v1/meetings")
      .set(who.headers)
      .send(meetingBody());
    const headers = {
      "content-type": "application/json; charset=utf-8",
      location: String(first.headers.location),
    };
    const sent = first.body as object;
    // How answers were sealed until the key came from one HMAC: stored ones stay readable until
    // they expire.
    const secret = Buffer.from(
      hkdfSync("sha256", key, who.organizationId, "zigznote idempotent answer", 32),
    );
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", secret, iv);
    cipher.setAAD(keyHash(who.organizationId, key));
    const plain = JSON.stringify({
      headers,
      body: Buffer.from(JSON.stringify(sent)).toString("base64"),
    });
    const response = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    const now = clock.now();
    await a.ctx.db.$executeRaw`
      INSERT INTO idempotency_keys (organization_id, key_hash, fingerprint, method, path,
                                    response_status, response, created_at, expires_at)
      VALUES (${who.organizationId}::uuid, ${keyHash(who.organizationId, key)},
              ${requestFingerprint("POST", "/api/v1/meetings", body)}, 'POST', '/api/v1/meetings',
              201, ${response}, ${now}, ${new Date(now.getTime() + 24 * HOUR)})`;
    const replayed = await keyedCreate(who, key, body, servers[0]!);
    expect(replayed.status).toBe(201);
    expect(replayed.headers["idempotent-replayed"]).toBe("true");
    expect(replayed.headers.location).toBe(headers.location);
    expect(replayed.body).toEqual(sent);
    expect(await meetingsOf(who.organizationId, body.title)).toBe(0);
  });

  it("forgets keys after IDEMPOTENCY_KEY_TTL_HOURS: the job deletes them, a repeat then runs", async () => {
    const who = await authHeaderFor(a, { role: "admin" });
    const key = randomUUID();
    const body = meetingBody();
    const first = await keyedCreate(who, key, body, servers[0]!);
    expect(first.status).toBe(201);
    const countKeys = () =>
      a.ctx.db.idempotencyKey.count({ where: { organizationId: who.organizationId } });
    expect(await countKeys()).toBe(1);

    clock.advance(23 * HOUR);
    const job = a.ctx.jobs.find((candidate) => candidate.name === "deleteExpiredIdempotencyKeys")!;
    await runJob(a.ctx, job, { scheduledFor: clock.now(), instanceId: "test" });
    expect(await countKeys()).toBe(1);

    clock.advance(1 * HOUR + 1000);
    const run = await runJob(a.ctx, job, { scheduledFor: clock.now(), instanceId: "test" });
    expect(run).toMatchObject({ status: "succeeded", rowsAffected: expect.any(Number) });
    expect(await countKeys()).toBe(0);

    const later = await keyedCreate(who, key, body, servers[1]!);
    expect(later.status).toBe(201);
    expect(later.headers["idempotent-replayed"]).toBeUndefined();
    expect(await meetingsOf(who.organizationId, body.title)).toBe(2);
  });
});
