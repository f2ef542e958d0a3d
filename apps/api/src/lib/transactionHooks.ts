import type { Db, SqlDb } from "@zigznote/database";
import { withSqlTransaction, withTransaction } from "./afterCommit";

/**
 * Work a caller adds to a service's own transaction: run last, with what the service wrote,
 * before it commits; if it throws, nothing the service did is kept. A route records its
 * idempotent answer this way (http/idempotency.ts), in the very transaction of the write.
 */
export type BeforeCommit<T> = (tx: SqlDb, result: T) => Promise<void>;

/**
 * Runs `write` and then `beforeCommit` in one transaction (the caller's, when `db` is one);
 * `write` alone (no transaction: it is one statement, or opens its own) when there is no hook.
 */
export async function commitWith<T>(
  db: Db,
  beforeCommit: BeforeCommit<T> | undefined,
  write: (db: Db) => Promise<T>,
): Promise<T> {
  if (!beforeCommit) return write(db);
  return withTransaction(db, async (tx) => {
    const result = await write(tx);
    await beforeCommit(tx, result);
    return result;
  });
}

/**
 * `commitWith` for a `write` of plain statements only (`queryRows`, `executeStatement`): the
 * transaction is an `sqlTransaction`, without Prisma's interactive transaction.
 */
export async function commitPlainWith<T>(
  db: SqlDb,
  beforeCommit: BeforeCommit<T> | undefined,
  write: (db: SqlDb) => Promise<T>,
): Promise<T> {
  if (!beforeCommit) return write(db);
  return withSqlTransaction(db, async (tx) => {
    const result = await write(tx);
    await beforeCommit(tx, result);
    return result;
  });
}
