import type { Db, SqlDb, TransactionBracket } from "@zigznote/database";
import { withSqlTransaction, withTransaction } from "./afterCommit";

export type { TransactionBracket };

/**
 * Runs `write` in one transaction with what a caller brackets it with (http/idempotency.ts: the
 * claim of an Idempotency-Key before, the answer last, in the very transaction of the write);
 * `write` alone (no transaction: it is one statement, or opens its own) when there is nothing to
 * bracket it with.
 */
export async function commitWith<T>(
  db: Db,
  bracket: TransactionBracket<T> | undefined,
  write: (db: Db) => Promise<T>,
): Promise<T> {
  if (!bracket) return write(db);
  return withTransaction(db, write, bracket);
}

/**
 * `commitWith` for a `write` of plain statements only (`queryRows`, `executeStatement`): the
 * transaction is an `sqlTransaction`, without Prisma's interactive transaction.
 */
export async function commitPlainWith<T>(
  db: SqlDb,
  bracket: TransactionBracket<T> | undefined,
  write: (db: SqlDb) => Promise<T>,
): Promise<T> {
  if (!bracket) return write(db);
  return withSqlTransaction(db, write, bracket);
}
