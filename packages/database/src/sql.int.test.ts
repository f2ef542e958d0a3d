import { createPrismaClient } from "./client";
import { isDatabaseUnavailable } from "./pgErrors";
import { executeStatement, queryRows, runPlainTransaction, runTransaction } from "./sql";
import { createOrganization } from "./testing/factories";
import { DEFAULT_TEST_DATABASE_URL } from "./testing/prepare";

const url = process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;

interface NameRow {
  name: string;
  createdAt: Date;
}

const SELECT_NAME = `SELECT name, created_at AS "createdAt" FROM organizations WHERE id = $1::uuid`;

describe("queryRows / executeStatement", () => {
  const db = createPrismaClient(url, { maxConnections: 2, statementTimeoutMs: 500 });
  afterAll(() => db.$disconnect());

  it("return the same rows on the client and inside a transaction, which they run in", async () => {
    const organization = await createOrganization(db);
    const [outside] = await queryRows<NameRow>(db, SELECT_NAME, [organization.id]);
    expect(outside).toEqual({ name: organization.name, createdAt: organization.createdAt });

    await expect(
      db.$transaction(async (tx) => {
        const changed = await executeStatement(
          tx,
          "UPDATE organizations SET name = $2 WHERE id = $1::uuid",
          [organization.id, "renamed in tx"],
        );
        expect(changed).toBe(1);
        // The transaction's own connection sees its uncommitted change; the pool does not.
        const [inside] = await queryRows<NameRow>(tx, SELECT_NAME, [organization.id]);
        expect(inside).toEqual({ name: "renamed in tx", createdAt: organization.createdAt });
        const [elsewhere] = await queryRows<NameRow>(db, SELECT_NAME, [organization.id]);
        expect(elsewhere?.name).toBe(organization.name);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const [after] = await queryRows<NameRow>(db, SELECT_NAME, [organization.id]);
    expect(after?.name).toBe(organization.name);
  });

  it("run under the client's statement timeout", async () => {
    const error = await queryRows(db, "SELECT pg_sleep(2)").then(
      () => new Error("expected a rejection"),
      (reason: unknown) => reason,
    );
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(await queryRows<{ one: number }>(db, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
  });
});

describe("runTransaction", () => {
  const db = createPrismaClient(url, { maxConnections: 6 });
  afterAll(() => db.$disconnect());

  it("sends plain statements to its own transaction's connection, 40 transactions at once", async () => {
    const seen = await Promise.all(
      Array.from({ length: 40 }, () =>
        runTransaction(db, async (tx) => {
          const [plain] = await queryRows<{ id: string }>(tx, "SELECT txid_current()::text AS id");
          const [viaPrisma] = await tx.$queryRaw<{ id: string }[]>`
            SELECT txid_current()::text AS id`;
          const [again] = await queryRows<{ id: string }>(tx, "SELECT txid_current()::text AS id");
          // pg's own int8 (a string), not Prisma's raw query path (a bigint): the connection itself.
          const [direct] = await queryRows<{ n: unknown }>(tx, "SELECT 1::int8 AS n");
          expect(direct!.n).toBe("1");
          return [plain!.id, viaPrisma!.id, again!.id];
        }),
      ),
    );
    for (const [plain, viaPrisma, again] of seen) {
      expect(plain).toBe(viaPrisma);
      expect(again).toBe(viaPrisma);
    }
    expect(new Set(seen.map(([id]) => id)).size).toBe(40);
  });

  it("rolls its plain statements back with it, and refuses them once it has ended", async () => {
    const organization = await createOrganization(db);
    let leaked: Parameters<typeof queryRows>[0] | undefined;
    await expect(
      runTransaction(db, async (tx) => {
        leaked = tx;
        await executeStatement(tx, "UPDATE organizations SET name = 'gone' WHERE id = $1::uuid", [
          organization.id,
        ]);
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const [row] = await queryRows<NameRow>(db, SELECT_NAME, [organization.id]);
    expect(row?.name).toBe(organization.name);
    await expect(queryRows(leaked!, "SELECT 1")).rejects.toThrow("Transaction already closed");
  });
});

describe("runPlainTransaction", () => {
  const db = createPrismaClient(url, { maxConnections: 4 });
  afterAll(() => db.$disconnect());

  it("commits its plain statements together, rolls them back together, and refuses Prisma's API", async () => {
    const organization = await createOrganization(db);
    const rename = (tx: Parameters<typeof queryRows>[0], name: string) =>
      executeStatement(tx, "UPDATE organizations SET name = $2 WHERE id = $1::uuid", [
        organization.id,
        name,
      ]);
    const ids = await runPlainTransaction(db, async (tx) => {
      await rename(tx, "committed");
      const [a] = await queryRows<{ id: string }>(tx, "SELECT txid_current()::text AS id");
      const [b] = await queryRows<{ id: string }>(tx, "SELECT txid_current()::text AS id");
      return [a!.id, b!.id];
    });
    expect(ids[0]).toBe(ids[1]);
    await expect(
      runPlainTransaction(db, async (tx) => {
        await rename(tx, "rolled back");
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const [row] = await queryRows<NameRow>(db, SELECT_NAME, [organization.id]);
    expect(row?.name).toBe("committed");
    await expect(runPlainTransaction(db, (tx) => tx.organization.count())).rejects.toThrow(
      "plain transaction",
    );
  });
});
