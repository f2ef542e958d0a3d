import { createPrismaClient, type Notification } from "@zigznote/database";
import {
  createMembership,
  createOrganizationWithAdmin,
  createUser,
} from "@zigznote/database/testing";
import {
  deliverPendingNotifications,
  enqueueAdminNotices,
  type NotificationTransport,
} from "../../src/notifications";
import { testDatabaseUrl } from "../support/env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 6 });
const other = createPrismaClient(testDatabaseUrl, { maxConnections: 6 });
afterAll(async () => {
  await db.$disconnect();
  await other.$disconnect();
});

/** Records sends; only counts notices of the test's organization (other suites share the table). */
function recordingTransport(organizationId: string, fail: false | true | string = false) {
  const sent: string[] = [];
  const transport: NotificationTransport = {
    async send(notification: Notification) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (fail !== false && notification.organizationId === organizationId) {
        throw new Error(fail === true ? "smtp down" : fail);
      }
      if (notification.organizationId === organizationId) sent.push(notification.id);
    },
  };
  return { sent, transport };
}

describe("enqueueAdminNotices", () => {
  it("queues one notice per admin and ignores a repeated cause", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    const admin2 = await createUser(db);
    await createMembership(db, {
      organizationId: organization.id,
      userId: admin2.id,
      role: "admin",
    });
    const member = await createUser(db);
    await createMembership(db, { organizationId: organization.id, userId: member.id });
    const notice = {
      organizationId: organization.id,
      type: "t",
      payload: { a: 1 },
      dedupeKey: `k:${organization.id}`,
    };
    expect(await enqueueAdminNotices({ db }, [notice])).toBe(2);
    expect(await enqueueAdminNotices({ db }, [notice])).toBe(0);
  });
});

describe("deliverPendingNotifications", () => {
  it("sends each notice once with two deliverers running at the same time", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    await enqueueAdminNotices(
      { db },
      Array.from({ length: 40 }, (_, i) => ({
        organizationId: organization.id,
        type: "t",
        payload: { i },
        dedupeKey: `n:${organization.id}:${i}`,
      })),
    );
    const a = recordingTransport(organization.id);
    const b = recordingTransport(organization.id);
    const now = new Date();
    await Promise.all([
      deliverPendingNotifications({ db: db, transport: a.transport }, { now, batchSize: 5 }),
      deliverPendingNotifications({ db: other, transport: b.transport }, { now, batchSize: 5 }),
    ]);
    const all = [...a.sent, ...b.sent];
    expect(all).toHaveLength(40);
    expect(new Set(all).size).toBe(40);
    const rows = await db.notification.findMany({ where: { organizationId: organization.id } });
    expect(rows.every((row) => row.status === "sent" && row.sentAt !== null)).toBe(true);
  });

  it("retries a failed send after its back-off and gives up after max attempts", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    await enqueueAdminNotices({ db }, [
      {
        organizationId: organization.id,
        type: "t",
        payload: {},
        dedupeKey: `f:${organization.id}`,
      },
    ]);
    const failing = recordingTransport(organization.id, true);
    const start = new Date();
    /** One delivery pass at `now` (1 s back-off, 2 attempts), then the notice as stored. */
    const deliverAndReload = async (now: Date) => {
      await deliverPendingNotifications(
        { db: db, transport: failing.transport },
        { now, claimMs: 1000, retryBaseMs: 1000, maxAttempts: 2 },
      );
      return db.notification.findFirstOrThrow({ where: { organizationId: organization.id } });
    };
    let row = await deliverAndReload(start);
    expect(row).toMatchObject({ status: "pending", attempts: 1, lastError: "smtp down" });
    // Still backing off: not retried yet.
    row = await deliverAndReload(start);
    expect(row.attempts).toBe(1);
    const later = new Date(start.getTime() + 1000);
    row = await deliverAndReload(later);
    expect(row).toMatchObject({ status: "failed", attempts: 2 });
  });

  it.each([
    ["U+0000 (a binary answer quoted)", "smtp said \u0000\u0001", "smtp said \uFFFD\u0001"],
    // The record keeps 1,000 UTF-16 units: the cut falls between the halves of the emoji.
    [
      "a surrogate pair cut at the limit",
      `${"a".repeat(999)}\u{1F600}`,
      `${"a".repeat(999)}\uFFFD`,
    ],
  ])(
    "records a failure whose text holds %s, which PostgreSQL cannot store",
    async (_, text, recorded) => {
      const { organization } = await createOrganizationWithAdmin(db);
      await enqueueAdminNotices({ db }, [
        {
          organizationId: organization.id,
          type: "t",
          payload: {},
          dedupeKey: `u:${organization.id}`,
        },
      ]);
      const failing = recordingTransport(organization.id, text);
      await deliverPendingNotifications(
        { db, transport: failing.transport },
        { now: new Date(), claimMs: 1000, retryBaseMs: 1000, maxAttempts: 2 },
      );
      const row = await db.notification.findFirstOrThrow({
        where: { organizationId: organization.id },
      });
      expect(row).toMatchObject({ status: "pending", attempts: 1, lastError: recorded });
    },
  );
});
