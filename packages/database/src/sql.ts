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

/** Makes `pool` the one plain statements on `client` run on (createPrismaClient does it). */
export function attachPool(client: object, pool: pg.Pool): void {
  pools.set(client, pool);
}

/**
 * What a statement parameter may be (pg serializes each; arrays become PostgreSQL arrays, bytes
 * `bytea`).
 */
export type SqlValue =
  string | number | boolean | bigint | Date | null | readonly string[] | Uint8Array;

/** The rows `text` returns, with `$1`... bound to `values`. */
export async function queryRows<R>(db: Db, text: string, values: SqlValue[] = []): Promise<R[]> {
  const pool = pools.get(db);
  if (pool) return (await pool.query(text, values as unknown[])).rows as R[];
  return db.$queryRawUnsafe<R[]>(text, ...values);
}

/** How many rows `text` (an INSERT, UPDATE or DELETE without RETURNING) changed. */
export async function executeStatement(
  db: Db,
  text: string,
  values: SqlValue[] = [],
): Promise<number> {
  const pool = pools.get(db);
  if (pool) return (await pool.query(text, values as unknown[])).rowCount ?? 0;
  return db.$executeRawUnsafe(text, ...values);
}
