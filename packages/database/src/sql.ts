import type pg from "pg";
import type { Db } from "./client";

/**
 * Plain parameterized SQL for the hot paths, on the very pool Prisma's driver adapter uses.
 *
 * Prisma 6.19 builds and compiles every query (its WASM query compiler) before the driver sees
 * it: hundreds of microseconds of CPU per statement, several times what `pg` itself costs. The
 * stores of the busiest routes send their statements here instead. On the client itself they go
 * straight to its pg pool (same connections, `statement_timeout`, query timeout, keepalive and
 * connection wait as Prisma's own queries); on an interactive transaction they go through that
 * transaction's connection (`$queryRawUnsafe`), so a store function means the same inside and
 * outside a transaction.
 *
 * Rows come back as pg gives them (`int8` and `numeric` as strings on the pool, `bigint` through
 * a transaction): alias columns to the field names callers expect, and convert counts with
 * `Number()` / `BigInt()`, which accept both.
 */

const pools = new WeakMap<object, pg.Pool>();
/** The connection of each open `sqlTransaction`. */
const connections = new WeakMap<object, pg.PoolClient>();

/**
 * A transaction on one pooled connection for plain statements (`queryRows`,
 * `executeStatement`) only: no Prisma model calls. `sqlTransaction` opens one; store functions
 * of the busy write paths take an `SqlDb`, so they run in it, in a Prisma interactive
 * transaction a caller opened, or on the client alike.
 */
export interface SqlTransaction {
  readonly isSqlTransaction: true;
}

/** Where a plain statement can run: the client, a Prisma transaction, or an `SqlTransaction`. */
export type SqlDb = Db | SqlTransaction;

/** True for an `SqlTransaction` (not the client, not a Prisma transaction). */
export function isSqlTransaction(db: SqlDb): db is SqlTransaction {
  return (db as Partial<SqlTransaction>).isSqlTransaction === true;
}

/** Makes `pool` the one plain statements on `client` run on (createPrismaClient does it). */
export function attachPool(client: object, pool: pg.Pool): void {
  pools.set(client, pool);
}

/** What a statement parameter may be (pg serializes each; arrays become PostgreSQL arrays). */
export type SqlValue = string | number | boolean | bigint | Date | null | readonly string[];

/** The pg pool or connection plain statements on `db` go to; none for a Prisma transaction. */
function connectionOf(db: SqlDb): pg.Pool | pg.PoolClient | undefined {
  if (isSqlTransaction(db)) {
    const connection = connections.get(db);
    if (!connection) throw new Error("the SQL transaction has ended");
    return connection;
  }
  return pools.get(db);
}

/** The rows `text` returns, with `$1`... bound to `values`. */
export async function queryRows<R>(db: SqlDb, text: string, values: SqlValue[] = []): Promise<R[]> {
  const connection = connectionOf(db);
  if (connection) return (await connection.query(text, values as unknown[])).rows as R[];
  return (db as Db).$queryRawUnsafe<R[]>(text, ...values);
}

/** How many rows `text` (an INSERT, UPDATE or DELETE without RETURNING) changed. */
export async function executeStatement(
  db: SqlDb,
  text: string,
  values: SqlValue[] = [],
): Promise<number> {
  const connection = connectionOf(db);
  if (connection) return (await connection.query(text, values as unknown[])).rowCount ?? 0;
  return (db as Db).$executeRawUnsafe(text, ...values);
}

/**
 * Runs `fn` in a transaction of plain statements on one connection of `client`'s pool: BEGIN,
 * `fn`'s statements, COMMIT (ROLLBACK when `fn` throws). What a Prisma interactive transaction
 * costs in CPU (its transaction manager and query engine: milliseconds per request on the busy
 * write paths) is not paid; the connection, statement timeout and keepalive are the pool's. A
 * connection whose ROLLBACK failed is discarded. A client without a pool of its own runs `fn`
 * in a Prisma interactive transaction instead (plain statements work in both).
 */
export async function sqlTransaction<T>(client: Db, fn: (tx: SqlDb) => Promise<T>): Promise<T> {
  const pool = pools.get(client);
  if (!pool) {
    if (!("$transaction" in client)) throw new Error("sqlTransaction needs the client");
    return client.$transaction((tx) => fn(tx));
  }
  const connection = await pool.connect();
  const tx: SqlTransaction = { isSqlTransaction: true };
  connections.set(tx, connection);
  let releaseError: Error | undefined;
  try {
    await connection.query("BEGIN");
    const result = await fn(tx);
    await connection.query("COMMIT");
    return result;
  } catch (error) {
    await connection.query("ROLLBACK").catch((rollbackError: unknown) => {
      releaseError = rollbackError instanceof Error ? rollbackError : new Error("rollback failed");
    });
    throw error;
  } finally {
    connections.delete(tx);
    connection.release(releaseError);
  }
}
