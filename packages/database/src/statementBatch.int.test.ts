import { randomBytes } from "node:crypto";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { EmbeddedSessionServer } from "./embeddedServer";
import { runStatementBatch } from "./statementBatch";
import { DEFAULT_TEST_DATABASE_URL } from "./testing/prepare";

const url = process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;

/** The protocol messages a client sent (pg's Connection, counted as they are written). */
function countMessages(client: pg.PoolClient): Record<"parse" | "close" | "sync", number> {
  const counts = { parse: 0, close: 0, sync: 0 };
  const connection = (client as unknown as { connection: Record<string, unknown> }).connection;
  for (const name of ["parse", "close", "sync"] as const) {
    const send = (connection[name] as (...args: unknown[]) => void).bind(connection);
    connection[name] = (...args: unknown[]) => {
      counts[name] += 1;
      send(...args);
    };
  }
  return counts;
}

/** A table of this test's own, with every kind of parameter a batch sends. */
async function createTable(pool: pg.Pool): Promise<string> {
  const table = `batch_${randomBytes(6).toString("hex")}`;
  await pool.query(`CREATE TABLE ${table} (
    id int PRIMARY KEY, bytes bytea, at timestamptz, tags text[], flag boolean, big int8, note text)`);
  return table;
}

describe("runStatementBatch", () => {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  afterAll(() => pool.end());

  /** `fn` with a table of its own and a connection, given back to the pool after. */
  async function onOwnTable(fn: (table: string, client: pg.PoolClient) => Promise<void>) {
    const table = await createTable(pool);
    const client = await pool.connect();
    try {
      await fn(table, client);
    } finally {
      client.release();
    }
  }

  it("runs the statements in order in one round trip, each parsed once per connection", async () => {
    await onOwnTable(async (table, client) => {
      const sent = countMessages(client);
      // Every byte value, a quote and a backslash: what a literal would have had to escape.
      const bytes = Buffer.concat([
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        randomBytes(700),
      ]);
      const at = new Date("2026-12-06T14:30:00.123Z");
      const insert = `INSERT INTO ${table} (id, bytes, at, tags, flag, big, note)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)`;
      for (let id = 1; id <= 3; id += 1) {
        await runStatementBatch(client, [
          { text: "BEGIN" },
          {
            text: insert,
            values: [id, bytes, at, ['a "quoted" tag', "back\\slash", "{}"], true, 2n ** 40n, null],
          },
          { text: `UPDATE ${table} SET note = $2 WHERE id = $1`, values: [id, "it's noted"] },
          { text: "COMMIT" },
        ]);
      }
      // Three batches of four statements: one Sync each, and each text parsed once.
      expect(sent).toEqual({ parse: 4, close: 4, sync: 3 });
      const { rows } = await client.query(`SELECT * FROM ${table} ORDER BY id`);
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row).toMatchObject({
          at,
          tags: ['a "quoted" tag', "back\\slash", "{}"],
          flag: true,
          big: String(2n ** 40n),
          note: "it's noted",
        });
        expect(Buffer.compare(row.bytes as Buffer, bytes)).toBe(0);
      }
    });
  });

  it("stops at the first error: the statements after it do not run", async () => {
    await onOwnTable(async (table, client) => {
      const insert = `INSERT INTO ${table} (id) VALUES ($1)`;
      await expect(
        runStatementBatch(client, [
          { text: "BEGIN" },
          { text: insert, values: [1] },
          { text: "SELECT 1 / $1::int", values: [0] },
          { text: insert, values: [2] },
          { text: "COMMIT" },
        ]),
      ).rejects.toMatchObject({ code: "22012" });
      // The transaction was left open and failed (the COMMIT never ran); the caller rolls back.
      await expect(client.query("SELECT 1")).rejects.toMatchObject({ code: "25P02" });
      await client.query("ROLLBACK");
      expect((await client.query(`SELECT id FROM ${table}`)).rows).toEqual([]);
    });
  });

  it("prepares again a statement whose batch failed, and one the server does not know", async () => {
    await onOwnTable(async (table, client) => {
      const sent = countMessages(client);
      const insert = { text: `INSERT INTO ${table} (id, note) VALUES ($1, $2)`, values: [1, "x"] };
      // Parsed on the server, but the batch failed after it: the client cannot know it exists.
      await expect(
        runStatementBatch(client, [insert, { text: "SELECT $1::int", values: ["not a number"] }]),
      ).rejects.toMatchObject({ code: "22P02" });
      // Closed and parsed again, not refused as a statement that already exists.
      await runStatementBatch(client, [{ ...insert, values: [2, "y"] }]);
      // Another session dropped every prepared statement (what a pooler's reset would do): after
      // one failure for the statement it lost, the connection prepares it again.
      await client.query("DEALLOCATE ALL");
      await expect(
        runStatementBatch(client, [{ ...insert, values: [3, "z"] }]),
      ).rejects.toMatchObject({
        code: "26000",
      });
      await runStatementBatch(client, [{ ...insert, values: [4, "w"] }]);
      expect(sent.parse).toBe(4);
      const { rows } = await client.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`);
      expect(rows.map((row) => row.id)).toEqual([2, 4]);
    });
  });

  it("works where several connections share one session (the embedded database)", async () => {
    const db = await PGlite.create();
    const server = new EmbeddedSessionServer({ db, host: "127.0.0.1", port: 0 });
    await server.start();
    const shared = new pg.Pool({
      connectionString: `postgresql://postgres:postgres@127.0.0.1:${server.port}/postgres?sslmode=disable`,
      max: 4,
    });
    try {
      await shared.query("CREATE TABLE items (id int PRIMARY KEY, bytes bytea)");
      // Four connections, each preparing the same names in the one session, 200 batches at once.
      await Promise.all(
        Array.from({ length: 200 }, async (_, id) => {
          const client = await shared.connect();
          try {
            await runStatementBatch(client, [
              { text: "BEGIN" },
              {
                text: "INSERT INTO items (id, bytes) VALUES ($1, $2)",
                values: [id, Buffer.from([id % 256])],
              },
              { text: "COMMIT" },
            ]);
          } finally {
            client.release();
          }
        }),
      );
      const { rows } = await shared.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
      expect(rows[0]?.n).toBe(200);
    } finally {
      await shared.end();
      await server.stop();
      await db.close();
    }
  });
});
