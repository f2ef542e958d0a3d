import { createPrismaClient, type Notification } from "@zigznote/database";
import { createOrganizationWithAdmin } from "@zigznote/database/testing";
import { transaction } from "../../src/lib/afterCommit";
import { systemClock } from "../../src/lib/clock";
import { createLogger } from "../../src/lib/logger";
import { createNotices, type NotificationTransport } from "../../src/notifications";
import { testDatabaseUrl } from "../support/env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 6 });
afterAll(() => db.$disconnect());

/**
 * Records what is sent for one organization, and whether its row was committed (visible to
 * another connection) at the moment of sending.
 */
function watchingTransport(organizationId: string) {
  const sent: { id: string; type: string; wasCommitted: boolean }[] = [];
  const transport: NotificationTransport = {
    async send(notification: Notification) {
      if (notification.organizationId !== organizationId) return;
      const visible = await db.notification.count({ where: { id: notification.id } });
      sent.push({ id: notification.id, type: notification.type, wasCommitted: visible === 1 });
    },
  };
  return { sent, transport };
}

function noticesWith(transport: NotificationTransport) {
  return createNotices({ db, clock: systemClock, logger: createLogger("silent"), transport });
}

describe("notices.enqueue (the outbox delivers by itself)", () => {
  it("delivers a notice queued in a transaction after the commit, without being asked", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    const { sent, transport } = watchingTransport(organization.id);
    const notices = noticesWith(transport);

    await transaction(db, async (tx) => {
      await notices.enqueue(tx, [
        {
          organizationId: organization.id,
          type: "t.commit",
          payload: {},
          dedupeKey: `c:${organization.id}`,
        },
      ]);
      // Still inside the transaction: nothing may be sent yet.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(sent).toEqual([]);
    });
    await new Promise((resolve) => setImmediate(resolve));
    await notices.idle();

    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ type: "t.commit", wasCommitted: true });
    const rows = await db.notification.findMany({ where: { organizationId: organization.id } });
    expect(rows.map((row) => row.status)).toEqual(["sent"]);
  });

  it("sends nothing for a transaction that rolled back", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    const { sent, transport } = watchingTransport(organization.id);
    const notices = noticesWith(transport);

    await expect(
      transaction(db, async (tx) => {
        await notices.enqueue(tx, [
          {
            organizationId: organization.id,
            type: "t.rollback",
            payload: {},
            dedupeKey: `r:${organization.id}`,
          },
        ]);
        throw new Error("the cause was undone");
      }),
    ).rejects.toThrow("the cause was undone");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await notices.idle();

    expect(sent).toEqual([]);
    expect(await db.notification.count({ where: { organizationId: organization.id } })).toBe(0);
  });

  it("delivers a notice queued outside any transaction at once", async () => {
    const { organization } = await createOrganizationWithAdmin(db);
    const { sent, transport } = watchingTransport(organization.id);
    const notices = noticesWith(transport);

    await notices.enqueue(db, [
      {
        organizationId: organization.id,
        type: "t.autocommit",
        payload: {},
        dedupeKey: `a:${organization.id}`,
      },
    ]);
    await new Promise((resolve) => setImmediate(resolve));
    await notices.idle();

    expect(sent.map((notice) => notice.type)).toEqual(["t.autocommit"]);
  });
});
