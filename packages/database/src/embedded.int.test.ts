import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { EmbeddedDatabaseInUseError, startEmbeddedPostgres } from "./embedded";
import { EmbeddedSessionServer, listenAvoiding } from "./embeddedServer";

/** A session server over an in-memory PGlite; `db` may wrap PGlite to inject failures. */
async function startSessionServer(wrap: (db: PGlite) => PGlite = (db) => db) {
  const db = await PGlite.create();
  const errors: unknown[] = [];
  const server = new EmbeddedSessionServer({
    db: wrap(db),
    host: "127.0.0.1",
    port: 0,
    onError: (error) => errors.push(error),
  });
  await server.start();
  const url = `postgresql://postgres:postgres@127.0.0.1:${server.port}/postgres?sslmode=disable`;
  return {
    url,
    errors,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}

/** Frontend messages, byte for byte (PostgreSQL protocol 3.0). */
function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}
const cstring = (text: string) => Buffer.from(`${text}\0`, "utf8");

function startupMessage(): Buffer {
  const body = Buffer.concat([
    Buffer.from([0, 3, 0, 0]),
    cstring("user"),
    cstring("postgres"),
    cstring("database"),
    cstring("postgres"),
    Buffer.from([0]),
  ]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(body.length + 4);
  return Buffer.concat([length, body]);
}

/** Connects, starts up and resolves once the backend says ReadyForQuery. */
function rawConnection(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.once("error", reject);
    let received = Buffer.alloc(0);
    const onData = (data: Buffer) => {
      received = Buffer.concat([received, data]);
      // ReadyForQuery: 'Z', length 5, status.
      if (received.includes(Buffer.from([0x5a, 0, 0, 0, 5]))) {
        socket.off("data", onData);
        resolve(socket);
      }
    };
    socket.on("data", onData);
    socket.once("connect", () => socket.write(startupMessage()));
  });
}

describe("listenAvoiding (a free port that is not the API's own)", () => {
  /** Listeners on `ports`, in turn, recording which were closed. */
  const listeners = (ports: number[]) => {
    const closed: number[] = [];
    let next = 0;
    const open = () => {
      const port = ports[next++]!;
      return Promise.resolve({ port, close: () => Promise.resolve(void closed.push(port)) });
    };
    return { open, closed };
  };

  it("closes a listener the kernel put on an avoided port and keeps the next one", async () => {
    const { open, closed } = listeners([3001, 3001, 45123]);
    const listener = await listenAvoiding(open, [3001]);
    expect(listener.port).toBe(45123);
    expect(closed).toEqual([3001, 3001]);
  });

  it("keeps the first listener when its port is not avoided", async () => {
    const { open, closed } = listeners([45123]);
    expect((await listenAvoiding(open, [3001])).port).toBe(45123);
    expect(closed).toEqual([]);
  });

  it("gives up after five avoided ports, every listener closed", async () => {
    const { open, closed } = listeners([3001, 3001, 3001, 3001, 3001, 45123]);
    await expect(listenAvoiding(open, [3001])).rejects.toThrow(
      "the embedded database was given a reserved port (3001) 5 times",
    );
    expect(closed).toHaveLength(5);
  });
});

describe("EmbeddedSessionServer", () => {
  it("runs 2,000 concurrent parameterized statements from 10 pooled connections without mixing them", async () => {
    const server = await startSessionServer();
    const pool = new pg.Pool({ connectionString: server.url, max: 10 });
    try {
      await pool.query(
        "CREATE TABLE items (id serial PRIMARY KEY, a int NOT NULL, b text NOT NULL)",
      );
      const results = await Promise.allSettled(
        Array.from({ length: 2_000 }, async (_, i) => {
          if (i % 2 === 0) {
            const inserted = await pool.query<{ a: number; b: string }>(
              "INSERT INTO items (a, b) VALUES ($1, $2) RETURNING a, b",
              [i, `item ${i}`],
            );
            expect(inserted.rows).toEqual([{ a: i, b: `item ${i}` }]);
          } else {
            // A different parameter count and types, so a mixed-up batch cannot pass.
            const read = await pool.query<{ n: number; echo: string }>(
              "SELECT count(*)::int AS n, $1::text AS echo FROM items WHERE a < $2 AND b <> $3",
              [`read ${i}`, i, ""],
            );
            expect(read.rows[0]?.echo).toBe(`read ${i}`);
          }
        }),
      );
      expect(results.filter((result) => result.status === "rejected")).toEqual([]);
      const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
      expect(rows[0]?.n).toBe(1_000);
      expect(server.errors).toEqual([]);
    } finally {
      await pool.end();
      await server.stop();
    }
  });

  it("runs a transaction whole: another connection's statement waits for its COMMIT", async () => {
    const server = await startSessionServer();
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    try {
      await pool.query("CREATE TABLE items (a int NOT NULL)");
      const owner = await pool.connect();
      const events: string[] = [];
      await owner.query("BEGIN");
      await owner.query("INSERT INTO items (a) VALUES ($1)", [1]);
      const other = pool
        .query<{ n: number }>("SELECT count(*)::int AS n FROM items WHERE a > $1", [0])
        .then((result) => {
          events.push("other read");
          return result.rows[0]?.n;
        });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await owner.query("INSERT INTO items (a) VALUES ($1)", [2]);
      events.push("commit");
      await owner.query("COMMIT");
      owner.release();
      expect(await other).toBe(2);
      expect(events).toEqual(["commit", "other read"]);
    } finally {
      await pool.end();
      await server.stop();
    }
  });

  it("rolls back the transaction of a connection that goes away inside it, and serves the others", async () => {
    const server = await startSessionServer();
    const pool = new pg.Pool({ connectionString: server.url, max: 3 });
    pool.on("error", () => undefined);
    try {
      await pool.query("CREATE TABLE items (a int NOT NULL)");
      const leaver = new pg.Client({ connectionString: server.url });
      leaver.on("error", () => undefined);
      await leaver.connect();
      await leaver.query("BEGIN");
      await leaver.query("INSERT INTO items (a) VALUES ($1)", [1]);
      const waiting = pool.query<{ n: number }>("SELECT count(*)::int AS n FROM items");
      // The connection drops without COMMIT or ROLLBACK (a crashed client).
      (leaver as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
      expect((await waiting).rows[0]?.n).toBe(0);
      const { rows } = await pool.query<{ open: boolean }>(
        "SELECT now() = statement_timestamp() AS open",
      );
      expect(rows[0]?.open).toBe(true); // a fresh implicit transaction, not the leaver's
    } finally {
      await pool.end();
      await server.stop();
    }
  });

  it("ends a batch that a connection left without Sync before the next connection runs", async () => {
    const server = await startSessionServer();
    const pool = new pg.Pool({ connectionString: server.url, max: 2 });
    try {
      const socket = await rawConnection(server.url);
      // A Parse that fails and no Sync: the backend now discards every message until a Sync,
      // so the next connection's batch would be lost unless the session is reset first.
      const parse = message(
        "P",
        Buffer.concat([cstring(""), cstring("SELECT * FROM no_such_table"), Buffer.from([0, 0])]),
      );
      socket.write(parse);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const read = pool.query<{ total: number }>(
        "SELECT $1::int * $2::int * $3::int AS total",
        [2, 3, 4],
      );
      socket.destroy();
      expect((await read).rows).toEqual([{ total: 24 }]);
      expect(server.errors).toEqual([]);
    } finally {
      await pool.end();
      await server.stop();
    }
  });

  it("closes only the connection that met a failure inside PGlite; the others go on", async () => {
    const server = await startSessionServer((db) => {
      const execProtocolRaw = db.execProtocolRaw.bind(db);
      db.execProtocolRaw = async (bytes, options) => {
        if (Buffer.from(bytes).includes("fail inside pglite")) throw new Error("wasm trap");
        return execProtocolRaw(bytes, options);
      };
      return db;
    });
    const pool = new pg.Pool({ connectionString: server.url, max: 4 });
    pool.on("error", () => undefined);
    try {
      const outcomes = await Promise.allSettled([
        pool.query("SELECT $1::text AS t", ["before"]),
        pool.query("SELECT 'fail inside pglite' AS t"),
        pool.query("SELECT $1::text AS t", ["after"]),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual([
        "fulfilled",
        "rejected",
        "fulfilled",
      ]);
      expect((await pool.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
      expect(server.errors).toHaveLength(1);
    } finally {
      await pool.end();
      await server.stop();
    }
  });
});

describe("startEmbeddedPostgres", () => {
  const dirs: string[] = [];
  const newDataDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), "zigznote-embedded-"));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a folder another live process serves, lets tools share it, and frees it on stop", async () => {
    const dataDir = newDataDir();
    const first = await startEmbeddedPostgres({ dataDir });
    try {
      await expect(startEmbeddedPostgres({ dataDir })).rejects.toBeInstanceOf(
        EmbeddedDatabaseInUseError,
      );
      const tool = await startEmbeddedPostgres({ dataDir, shareRunning: true });
      expect(tool).toMatchObject({ isOwner: false, url: first.url });
      const client = new pg.Client({ connectionString: tool.url });
      await client.connect();
      expect((await client.query("SELECT 41 + $1::int AS n", [1])).rows).toEqual([{ n: 42 }]);
      await client.end();
      await tool.stop(); // nothing to stop: the server is the first one's
      expect(await canQuery(first.url)).toBe(true);
    } finally {
      await first.stop();
    }
    const again = await startEmbeddedPostgres({ dataDir });
    expect(again.isOwner).toBe(true);
    await again.stop();
  }, 60_000);

  it("ignores what a process that no longer runs left in the folder", async () => {
    const dataDir = newDataDir();
    // A pid far above any default pid_max, so no live process has it.
    writeFileSync(
      path.join(dataDir, "zigznote-server.json"),
      JSON.stringify({ pid: 2 ** 30, url: "postgresql://postgres@127.0.0.1:1/postgres" }),
    );
    const embedded = await startEmbeddedPostgres({ dataDir });
    expect(embedded.isOwner).toBe(true);
    expect(await canQuery(embedded.url)).toBe(true);
    await embedded.stop();
  }, 60_000);

  it("ignores a file naming this process's own pid that it does not hold (a container's PID 1, killed while starting)", async () => {
    const dataDir = newDataDir();
    writeFileSync(
      path.join(dataDir, "zigznote-server.json"),
      JSON.stringify({ pid: process.pid, url: null }),
    );
    const embedded = await startEmbeddedPostgres({ dataDir });
    try {
      expect(embedded.isOwner).toBe(true);
      expect(await canQuery(embedded.url)).toBe(true);
      // Now that it does hold the folder, a second start in the same process is refused.
      await expect(startEmbeddedPostgres({ dataDir })).rejects.toBeInstanceOf(
        EmbeddedDatabaseInUseError,
      );
    } finally {
      await embedded.stop();
    }
  }, 60_000);
});

async function canQuery(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query("SELECT true AS ok")).rows[0]?.ok === true;
  } finally {
    await client.end();
  }
}
