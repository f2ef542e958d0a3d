import type { Db, PrismaClient } from "@zigznote/database";
import { plainTransaction, transaction } from "./afterCommit";

/**
 * Work a caller adds to a service's own transaction: run last, with what the service wrote,
 * before it commits; if it throws, nothing the service did is kept. A route records its
 * idempotent answer this way (http/idempotency.ts), in the very transaction of the write.
 */
export type BeforeCommit<T> = (tx: Db, result: T) => Promise<void>;

/**
 * Runs `write` and then `beforeCommit` in one transaction; `write` alone (no transaction: it is
 * one statement, or opens its own) when there is no hook. `isPlain`: `write` runs plain
 * statements only (`queryRows`, `executeStatement`), so the transaction can do without Prisma's.
 */
export async function commitWith<T>(
  db: PrismaClient,
  beforeCommit: BeforeCommit<T> | undefined,
  write: (db: Db) => Promise<T>,
  options: { isPlain?: boolean } = {},
): Promise<T> {
  if (!beforeCommit) return write(db);
  return (options.isPlain ? plainTransaction : transaction)(db, async (tx) => {
    const result = await write(tx);
    await beforeCommit(tx, result);
    return result;
  });
}

/** Runs `work` in `db` when it is a transaction already, else in a new one. */
export function inTransaction<T>(db: Db, work: (tx: Db) => Promise<T>): Promise<T> {
  return "$transaction" in db ? transaction(db, work) : work(db);
}
