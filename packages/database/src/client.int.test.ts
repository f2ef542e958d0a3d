import { createPrismaClient } from "./client";
import { isDatabaseUnavailable } from "./pgErrors";
import { createOrganization } from "./testing/factories";
import { DEFAULT_TEST_DATABASE_URL } from "./testing/prepare";

const url = process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;

async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (reason: unknown) => reason,
  );
}

describe("createPrismaClient with statementTimeoutMs", () => {
  const db = createPrismaClient(url, { maxConnections: 2, statementTimeoutMs: 500 });
  afterAll(() => db.$disconnect());

  it("has the server cancel a long statement (unavailable), and the connection serves on", async () => {
    const raw = await rejectionOf(db.$queryRaw`SELECT pg_sleep(2)`);
    expect(isDatabaseUnavailable(raw)).toBe(true);
    // Through a model query the adapter's error arrives unwrapped: a row locked elsewhere.
    const organization = await createOrganization(db);
    const slow = await rejectionOf(
      db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT id FROM organizations WHERE id = ${organization.id}::uuid FOR UPDATE`;
        await db.organization.update({ where: { id: organization.id }, data: { name: "renamed" } });
      }),
    );
    expect(isDatabaseUnavailable(slow)).toBe(true);
    expect(await db.$queryRaw`SELECT 1 AS one`).toEqual([{ one: 1 }]);
  });

  it("does not call a wrong query or a constraint violation unavailable", async () => {
    const organization = await createOrganization(db);
    const duplicate = await rejectionOf(
      db.organization.create({ data: { name: "copy", clerkId: organization.clerkId } }),
    );
    expect(isDatabaseUnavailable(duplicate)).toBe(false);
    expect(isDatabaseUnavailable(await rejectionOf(db.$queryRaw`SELECT 1/0`))).toBe(false);
    expect(isDatabaseUnavailable(new Error("something else"))).toBe(false);
  });

  it("says what failed in a few lines, not Prisma's quoted source (job runs and logs keep it)", async () => {
    const cancelled = (await rejectionOf(db.$queryRaw`SELECT pg_sleep(2)`)) as Error;
    expect(cancelled.message).toContain("canceling statement due to statement timeout");
    expect(cancelled.message.length).toBeLessThan(300);
    const missing = (await rejectionOf(db.$queryRawUnsafe("SELECT * FROM no_such_table"))) as Error;
    expect(missing.message).toMatch(/42P01.*relation "no_such_table" does not exist/);
    expect(missing.message.length).toBeLessThan(300);
  });
});

it("calls a refused connection unavailable", async () => {
  // Port 1 on loopback: nothing listens there.
  const db = createPrismaClient("postgresql://postgres@127.0.0.1:1/none", {
    connectionTimeoutMs: 1_000,
  });
  try {
    expect(isDatabaseUnavailable(await rejectionOf(db.$queryRaw`SELECT 1`))).toBe(true);
    expect(isDatabaseUnavailable(await rejectionOf(db.organization.count()))).toBe(true);
  } finally {
    await db.$disconnect();
  }
});
