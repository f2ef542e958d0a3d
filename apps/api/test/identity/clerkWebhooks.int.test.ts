import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { uniqueSuffix } from "@zigznote/database/testing";
import { upsertUser } from "../../src/identity/identityService";
import {
  buildClerkScenario,
  clerkUserData,
  type ClerkEventFixture,
} from "../support/clerkFixtures";
import { createTestApp, type TestApp } from "../support/helpers";
import { shuffle } from "../support/shuffled";
import { newSvixSecret, svixHeaders } from "../support/webhookSigning";

const secret = newSvixSecret();
let testApp: TestApp;
let server: Server;
let baseUrl: string;

beforeAll(async () => {
  testApp = createTestApp({ env: { CLERK_WEBHOOK_SECRET: secret } });
  server = await new Promise<Server>((resolve) => {
    const listening = testApp.app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await testApp.close();
});

interface Delivery {
  status: number;
  body: { received?: boolean; duplicate?: boolean; handled?: boolean; error?: { code: string } };
}

/** One delivery, signed at send time as Svix does (retries carry the same message id). */
async function deliver(event: ClerkEventFixture): Promise<Delivery> {
  const body = JSON.stringify(event.body);
  const response = await fetch(`${baseUrl}/webhooks/clerk`, {
    method: "POST",
    headers: svixHeaders(secret, event.msgId, body),
    body,
  });
  return { status: response.status, body: (await response.json()) as Delivery["body"] };
}

/** Delivers like a provider: a non-2xx answer (409 in progress, 5xx) is retried until accepted. */
async function deliverUntilAccepted(event: ClerkEventFixture): Promise<Delivery> {
  for (let attempt = 1; ; attempt += 1) {
    const delivery = await deliver(event);
    if (delivery.status === 200 || attempt >= 20) return delivery;
    await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
  }
}

/** Everything the scenario touched, with the run's prefix removed so runs compare. */
async function snapshot(prefix: string) {
  const db = testApp.ctx.db;
  const strip = (value: string | null) => value?.split(prefix).join("<p>") ?? null;
  const users = await db.user.findMany({
    where: { clerkId: { contains: `_${prefix}_` } },
    orderBy: { clerkId: "asc" },
  });
  const organizations = await db.organization.findMany({
    where: { clerkId: { contains: `_${prefix}_` } },
    orderBy: { clerkId: "asc" },
  });
  const memberships = await db.membership.findMany({
    where: { organization: { clerkId: { contains: `_${prefix}_` } } },
    include: { organization: true, user: true },
  });
  const tombstones = await db.deletedMembership.findMany({
    where: { clerkId: { contains: `_${prefix}_` } },
    orderBy: { clerkId: "asc" },
  });
  return {
    users: users.map((u) => ({
      clerkId: strip(u.clerkId),
      email: strip(u.email),
      firstName: u.firstName,
      lastName: u.lastName,
      imageUrl: strip(u.imageUrl),
      clerkUpdatedAt: u.clerkUpdatedAt,
      deletedAt: u.deletedAt,
    })),
    organizations: organizations.map((o) => ({
      clerkId: strip(o.clerkId),
      name: o.name,
      status: o.status,
      clerkUpdatedAt: o.clerkUpdatedAt,
      deletedAt: o.deletedAt,
    })),
    memberships: memberships
      .map((m) => ({
        organization: strip(m.organization.clerkId),
        user: strip(m.user.clerkId),
        role: m.role,
        clerkId: strip(m.clerkId),
        clerkUpdatedAt: m.clerkUpdatedAt,
      }))
      .sort((a, b) => `${a.organization}${a.user}`.localeCompare(`${b.organization}${b.user}`)),
    tombstones: tombstones.map((t) => ({ clerkId: strip(t.clerkId), deletedAt: t.deletedAt })),
  };
}

describe("Clerk webhook replay harness", () => {
  it("ends in the same state whether events arrive once in order or 5 times concurrently shuffled", async () => {
    const start = Date.UTC(2026, 0, 1);
    const inOrderPrefix = `a${uniqueSuffix()}`;
    const inOrder = buildClerkScenario(inOrderPrefix, start);
    for (const event of inOrder) {
      const delivery = await deliver(event);
      expect(delivery.status).toBe(200);
      expect(delivery.body.duplicate).toBeUndefined();
    }
    const expected = await snapshot(inOrderPrefix);

    const replayPrefix = `b${uniqueSuffix()}`;
    const replay = buildClerkScenario(replayPrefix, start);
    const deliveries = shuffle(replay.flatMap((event) => Array.from({ length: 5 }, () => event)));
    const answers = await Promise.all(deliveries.map((event) => deliverUntilAccepted(event)));

    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    // Exactly one delivery of each handled event took effect; the other four were told
    // "duplicate". An event without a handler (session.created) is acknowledged each time and
    // never recorded.
    const handled = answers.filter((answer) => answer.body.handled !== false);
    const unhandledEvents = answers.length / 5 - handled.length / 5;
    expect(unhandledEvents).toBe(1);
    expect(handled.filter((answer) => !answer.body.duplicate)).toHaveLength(
      replay.length - unhandledEvents,
    );
    const records = await testApp.ctx.db.processedWebhook.count({
      where: { provider: "clerk", eventId: { startsWith: `msg_${replayPrefix}_` } },
    });
    expect(records).toBe(replay.length - unhandledEvents);
    expect(await snapshot(replayPrefix)).toEqual(expected);

    // The scenario's outcome, spelled out once.
    expect(expected.memberships).toEqual([
      expect.objectContaining({
        organization: "org_<p>_acme",
        user: "user_<p>_grace",
        role: "admin",
      }),
      expect.objectContaining({
        organization: "org_<p>_globex",
        user: "user_<p>_barbara",
        role: "admin",
        clerkId: "orgmem_<p>_6",
      }),
      expect.objectContaining({
        organization: "org_<p>_globex",
        user: "user_<p>_grace",
        role: "admin",
      }),
      expect.objectContaining({
        organization: "org_<p>_initech",
        user: "user_<p>_linus",
        role: "admin",
      }),
    ]);
    expect(expected.organizations.find((o) => o.clerkId === "org_<p>_acme")?.name).toBe(
      "Acme Corporation",
    );
    expect(expected.organizations.find((o) => o.clerkId === "org_<p>_initech")?.status).toBe(
      "deleted",
    );
    const ada = expected.users.find((u) => u.clerkId === "user_<p>_ada");
    expect(ada).toMatchObject({ email: null, deletedAt: expect.any(Date) });
    expect(expected.users.find((u) => u.clerkId === "user_<p>_grace")?.lastName).toBe("Hopper");
  });
});

describe("Clerk user events and first-request provisioning", () => {
  function userEvent(
    type: string,
    clerkId: string,
    email: string,
    updatedAt: number,
  ): ClerkEventFixture {
    return {
      msgId: `msg_${uniqueSuffix()}`,
      body: {
        data: clerkUserData({
          id: clerkId,
          email,
          firstName: "Ada",
          lastName: "L",
          createdAt: updatedAt,
          updatedAt,
        }),
        object: "event",
        type,
        timestamp: updatedAt,
        instance_id: "ins_test",
      },
    };
  }

  /** What the first authenticated request of an unknown user does (identity issue). */
  const firstRequest = (clerkId: string) =>
    upsertUser(testApp.ctx, { clerkId, updatedAt: new Date(), onlyIfMissing: true });

  it.each(["webhook first", "first request first", "concurrently"])(
    "leaves one row with the webhook's data (%s)",
    async (order) => {
      const clerkId = `user_${uniqueSuffix()}`;
      // Clerk's updated_at is older than the session token the first request carries.
      const event = userEvent(
        "user.created",
        clerkId,
        `${clerkId}@example.test`,
        Date.now() - 60_000,
      );
      if (order === "webhook first") {
        expect((await deliver(event)).status).toBe(200);
        await firstRequest(clerkId);
      } else if (order === "first request first") {
        await firstRequest(clerkId);
        expect((await deliver(event)).status).toBe(200);
      } else {
        const [delivery] = await Promise.all([
          deliver(event),
          ...Array.from({ length: 5 }, () => firstRequest(clerkId)),
        ]);
        expect(delivery.status).toBe(200);
      }
      const rows = await testApp.ctx.db.user.findMany({ where: { clerkId } });
      expect(rows).toHaveLength(1);
      expect(rows[0]!.email).toBe(`${clerkId}@example.test`);
    },
  );

  it("does not let an older user.updated overwrite a newer one", async () => {
    const clerkId = `user_${uniqueSuffix()}`;
    const base = Date.UTC(2026, 1, 1);
    await deliver(userEvent("user.created", clerkId, "first@example.test", base));
    await deliver(userEvent("user.updated", clerkId, "newest@example.test", base + 2_000));
    const late = await deliver(
      userEvent("user.updated", clerkId, "older@example.test", base + 1_000),
    );
    expect(late.status).toBe(200);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { clerkId } });
    expect(user.email).toBe("newest@example.test");
  });

  it("keeps a deleted user deleted when its creation arrives afterwards", async () => {
    const clerkId = `user_${uniqueSuffix()}`;
    const base = Date.UTC(2026, 1, 1);
    const deletion: ClerkEventFixture = {
      msgId: `msg_${uniqueSuffix()}`,
      body: {
        data: { id: clerkId, object: "user", deleted: true },
        object: "event",
        type: "user.deleted",
        timestamp: base + 5_000,
        instance_id: "ins_test",
      },
    };
    expect((await deliver(deletion)).status).toBe(200);
    expect(
      (await deliver(userEvent("user.created", clerkId, "late@example.test", base))).status,
    ).toBe(200);
    const user = await testApp.ctx.db.user.findUniqueOrThrow({ where: { clerkId } });
    expect(user.deletedAt).not.toBeNull();
    expect(user.email).toBeNull();
  });
});
