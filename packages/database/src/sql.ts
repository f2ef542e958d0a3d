import { AsyncLocalStorage } from "node:async_hooks";
import type pg from "pg";
import type { Prisma, PrismaClient } from "../generated/client";
import type { Db } from "./client";
import { runStatementBatch } from "./statementBatch";

/**
 * Plain parameterized SQL for the hot paths, on the very pool Prisma's driver adapter uses.
 *
 * Prisma 6.19 builds and compiles every query (its WASM query compiler) before the driver sees
 * it: hundreds of microseconds of CPU per statement, several times what `pg` itself costs. The
 * stores of the busiest routes send their statements here instead, wherever they run:
 * - on the client: straight to its pg pool (same connections, `statement_timeout`, query
 *   timeout, keepalive and connection wait as Prisma's own queries);
 * - in an `sqlTransaction` (plain statements only): on its one connection;
 * - in a Prisma interactive transaction opened with `runTransaction`: on that transaction's own
 *   pg connection (Prisma's raw query path costs as much as its compiled queries);
 * - in any other Prisma interactive transaction: through it (`$queryRawUnsafe`).
 * So a store function means the same inside and outside a transaction.
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

/** A transaction's pg connection, while the transaction is open. */
export interface TransactionConnection {
  client: pg.PoolClient;
  isOpen: boolean;
}

/** The open transactions' connections: `SqlTransaction`s and `runTransaction`'s clients. */
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

/** A statement with its parameters: `$1`... bound to `values`. */
export interface SqlStatement {
  text: string;
  values?: SqlValue[];
}

/**
 * What a caller adds around a transaction's own work, sent in the round trips the transaction
 * makes anyway (`runStatementBatch`: each statement parameterized, one round trip):
 * - `firstStatement`: run first in the transaction, with its BEGIN: a claim, say. It must raise
 *   an error to stop the transaction before its work begins;
 * - `lastStatement(result)`: one statement run last, with its COMMIT. It must raise an error when
 *   it cannot do its part: nothing is committed then.
 * Statements that return no rows (`CALL`) suit it: their rows would not be read.
 */
export interface TransactionBracket<T> {
  firstStatement?: SqlStatement;
  lastStatement?: (result: T) => SqlStatement | undefined;
}

/** `statement` in `db` (the client, or a transaction), for its effect. */
export function runStatement(db: SqlDb, statement: SqlStatement): Promise<number> {
  return executeStatement(db, statement.text, statement.values);
}

/** The bracket's first statement in `tx`, a transaction already begun (Prisma's, or a caller's). */
export async function runFirstStatement<T>(
  tx: SqlDb,
  bracket: TransactionBracket<T>,
): Promise<void> {
  if (bracket.firstStatement) await runStatement(tx, bracket.firstStatement);
}

/** The bracket's last statement for `result` in `tx`, before the caller commits it. */
export async function runLastStatement<T>(
  tx: SqlDb,
  bracket: TransactionBracket<T>,
  result: T,
): Promise<void> {
  const last = bracket.lastStatement?.(result);
  if (last) await runStatement(tx, last);
}

const BEGIN: SqlStatement = { text: "BEGIN" };
const COMMIT: SqlStatement = { text: "COMMIT" };

/**
 * Runs `fn` in a transaction of plain statements on one connection of `client`'s pool: BEGIN,
 * `fn`'s statements, COMMIT (ROLLBACK when `fn` throws). What a Prisma interactive transaction
 * costs in CPU (its transaction manager and query engine: milliseconds per request on the busy
 * write paths) is not paid; the connection, statement timeout and keepalive are the pool's. A
 * connection whose ROLLBACK failed is discarded. A client without a pool of its own runs `fn`
 * in a Prisma interactive transaction instead (plain statements work in both).
 */
export async function sqlTransaction<T>(
  client: Db,
  fn: (tx: SqlDb) => Promise<T>,
  bracket: TransactionBracket<T> = {},
): Promise<T> {
  const pool = pools.get(client);
  if (!pool) {
    if (!("$transaction" in client)) throw new Error("sqlTransaction needs the client");
    return client.$transaction(async (tx) => {
      await runFirstStatement(tx, bracket);
      const result = await fn(tx);
      await runLastStatement(tx, bracket, result);
      return result;
    });
  }
  const connection: TransactionConnection = { client: await pool.connect(), isOpen: true };
  const tx: SqlTransaction = { isSqlTransaction: true };
  transactionConnections.set(tx, connection);
  let releaseError: Error | undefined;
  try {
    if (bracket.firstStatement) {
      await runStatementBatch(connection.client, [BEGIN, bracket.firstStatement]);
    } else {
      await connection.client.query("BEGIN");
    }
    const result = await fn(tx);
    const last = bracket.lastStatement?.(result);
    if (last) await runStatementBatch(connection.client, [last, COMMIT]);
    else await connection.client.query("COMMIT");
    return result;
  } catch (error) {
    await connection.client.query("ROLLBACK").catch((rollbackError: unknown) => {
      // The connection is unusable: the pool discards it rather than hand it out again.
      releaseError = rollbackError instanceof Error ? rollbackError : new Error("rollback failed");
    });
    throw error;
  } finally {
    connection.isOpen = false;
    connection.client.release(releaseError);
  }
}

/** The pg pool or connection plain statements on `db` go to; none for another Prisma transaction. */
function connectionOf(db: SqlDb): pg.Pool | pg.PoolClient | undefined {
  const connection = transactionConnections.get(db);
  if (connection) {
    if (!connection.isOpen)
      throw new Error("Transaction already closed: a statement after its end");
    return connection.client;
  }
  if (isSqlTransaction(db))
    throw new Error("Transaction already closed: a statement after its end");
  return pools.get(db);
}

/**
 * What a statement parameter may be (pg serializes each; arrays become PostgreSQL arrays, bytes
 * `bytea`).
 */
export type SqlValue =
  string | number | boolean | bigint | Date | null | readonly string[] | Uint8Array;

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
  values: readonly SqlValue[] = [],
): Promise<number> {
  const connection = connectionOf(db);
  if (connection) return (await connection.query(text, values as unknown[])).rowCount ?? 0;
  return (db as Db).$executeRawUnsafe(text, ...values);
}
