import { AsyncLocalStorage } from "node:async_hooks";
import type pg from "pg";
import type { Prisma, PrismaClient } from "../generated/client";
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
 * In a transaction opened with `runTransaction`, they go straight to the transaction's own pg
 * connection too (Prisma's raw query path costs as much as its compiled queries).
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

/** A transaction's pg connection, while Prisma holds it for that transaction. */
export interface TransactionConnection {
  client: pg.PoolClient;
  isOpen: boolean;
}

/** The interactive transactions' connections, by the transaction client Prisma hands out. */
const transactionConnections = new WeakMap<object, TransactionConnection>();

/** Set by `runTransaction` while Prisma starts its transaction: where the connection goes. */
const startingTransaction = new AsyncLocalStorage<{ connection?: TransactionConnection }>();

/**
 * Called by the driver adapter when it opened a transaction on `client`: the connection of the
 * `runTransaction` being started in this async context (the first one only), else undefined.
 */
export function noteTransactionStarted(client: pg.PoolClient): TransactionConnection | undefined {
  const slot = startingTransaction.getStore();
  if (!slot || slot.connection) return undefined;
  slot.connection = { client, isOpen: true };
  return slot.connection;
}

/**
 * `db.$transaction(fn)`, where `queryRows` and `executeStatement` on `fn`'s transaction client
 * run on the transaction's connection directly (Prisma's own queries in it are unchanged, on the
 * same connection, in order). Once the transaction ended, a plain statement on it throws, as
 * Prisma's do.
 */
export function runTransaction<T>(
  db: PrismaClient,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
  options?: Parameters<PrismaClient["$transaction"]>[1],
): Promise<T> {
  const slot: { connection?: TransactionConnection } = {};
  return startingTransaction.run(slot, () =>
    db.$transaction(async (tx) => {
      if (slot.connection) transactionConnections.set(tx, slot.connection);
      return fn(tx);
    }, options),
  );
}

/**
 * A transaction of plain statements only (`queryRows`, `executeStatement`): BEGIN and COMMIT on a
 * pooled connection, without Prisma's interactive transaction machinery (a third of a short
 * write's CPU on the busy paths). Anything else on `fn`'s transaction client throws: a store
 * function that uses Prisma's API needs `runTransaction`. Rolled back when `fn` throws.
 */
export async function runPlainTransaction<T>(
  db: PrismaClient,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  const pool = pools.get(db);
  if (!pool) return runTransaction(db, fn);
  const client = await pool.connect();
  const connection: TransactionConnection = { client, isOpen: true };
  const tx = new Proxy(
    {},
    {
      get(_target, property) {
        // Not a promise (await and Promise.resolve look for `then`).
        if (property === "then") return undefined;
        throw new Error(
          `A plain transaction runs queryRows and executeStatement only, not Prisma's ${String(property)}`,
        );
      },
    },
  ) as Prisma.TransactionClient;
  transactionConnections.set(tx, connection);
  let releaseError: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await fn(tx);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackError: unknown) => {
      // The connection is unusable: the pool discards it rather than hand it out again.
      releaseError =
        rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    connection.isOpen = false;
    client.release(releaseError);
  }
}

function connectionOf(db: Db): pg.PoolClient | null {
  const connection = transactionConnections.get(db);
  if (!connection) return null;
  if (!connection.isOpen) throw new Error("Transaction already closed: a statement after its end");
  return connection.client;
}

/**
 * What a statement parameter may be (pg serializes each; arrays become PostgreSQL arrays, bytes
 * `bytea`).
 */
export type SqlValue =
  string | number | boolean | bigint | Date | null | readonly string[] | Uint8Array;

/** The rows `text` returns, with `$1`... bound to `values`. */
export async function queryRows<R>(db: Db, text: string, values: SqlValue[] = []): Promise<R[]> {
  const runner = pools.get(db) ?? connectionOf(db);
  if (runner) return (await runner.query(text, values as unknown[])).rows as R[];
  return db.$queryRawUnsafe<R[]>(text, ...values);
}

/** How many rows `text` (an INSERT, UPDATE or DELETE without RETURNING) changed. */
export async function executeStatement(
  db: Db,
  text: string,
  values: SqlValue[] = [],
): Promise<number> {
  const runner = pools.get(db) ?? connectionOf(db);
  if (runner) return (await runner.query(text, values as unknown[])).rowCount ?? 0;
  return db.$executeRawUnsafe(text, ...values);
}
