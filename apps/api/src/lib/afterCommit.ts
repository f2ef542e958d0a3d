import { AsyncLocalStorage } from "node:async_hooks";
import {
  isSqlTransaction,
  runFirstStatement,
  runLastStatement,
  runTransaction,
  sqlTransaction,
  type TransactionBracket,
  type Db,
  type Prisma,
  type PrismaClient,
  type SqlDb,
} from "@zigznote/database";

/**
 * Work that must wait for a transaction to commit (sending what an outbox row records, calling
 * a provider) registers itself with `afterCommit` where it arises; whoever opened the
 * transaction runs the tasks once it committed, and drops them when it rolled back. Outside a
 * transaction opened through here, a task runs at once (the write it follows has committed).
 */

export type AfterCommitTask = () => Promise<void> | void;

const scope = new AsyncLocalStorage<AfterCommitTask[]>();

/** Runs `task` after the enclosing transaction commits, or now when there is none. */
export function afterCommit(task: AfterCommitTask): void {
  const tasks = scope.getStore();
  if (tasks) tasks.push(task);
  else startDetached(task);
}

/**
 * Starts `task` now, without waiting for it: it has started (a delivery run is under way, say)
 * when this returns. Tasks report their own failures; a rejection is not left unhandled.
 */
function startDetached(task: AfterCommitTask): void {
  try {
    void Promise.resolve(task()).catch(() => undefined);
  } catch {
    // A task that throws synchronously has nothing left to run.
  }
}

/**
 * Runs `work` (which opens and commits a transaction) and returns the tasks registered inside it,
 * for the caller to run (tracked) once `work` resolved. When `work` throws, they are dropped.
 */
export async function collectAfterCommit<T>(
  work: () => Promise<T>,
): Promise<{ result: T; tasks: AfterCommitTask[] }> {
  const tasks: AfterCommitTask[] = [];
  const result = await scope.run(tasks, work);
  return { result, tasks };
}

/**
 * `db.$transaction(fn)` (through `runTransaction`: plain statements in it run on its connection
 * directly), then the after-commit tasks registered inside it, each on its own (a task's failure
 * is its own business: tasks log what they must).
 */
export async function transaction<T>(
  db: PrismaClient,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
  options?: {
    maxWait?: number;
    timeout?: number;
    isolationLevel?: Prisma.TransactionIsolationLevel;
  },
): Promise<T> {
  const { result, tasks } = await collectAfterCommit(() => runTransaction(db, fn, options));
  for (const task of tasks) startDetached(task);
  return result;
}

/**
 * Runs `fn` in the caller's transaction when `db` is one, else in a new one (`transaction`): a
 * service that takes a `db` is one unit of work either way, and a caller can make it part of its
 * own. `bracket` (an idempotent answer's claim and record) goes with the transaction: its first
 * statement runs before `fn`, its last statement last in the transaction.
 */
export async function withTransaction<T>(
  db: Db,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
  bracket: TransactionBracket<T> = {},
): Promise<T> {
  if (!("$transaction" in db)) return runBracketed(db, fn, bracket);
  return transaction(db, (tx) => runBracketed(tx, fn, bracket));
}

/**
 * `withTransaction` for work made of plain statements only (`queryRows`, `executeStatement`):
 * a new transaction is an `sqlTransaction` (no Prisma engine on the busy write paths, and the
 * bracket's statements travel with BEGIN and COMMIT); a caller's transaction, Prisma's or an
 * `SqlTransaction`, is joined.
 */
export async function withSqlTransaction<T>(
  db: SqlDb,
  fn: (tx: SqlDb) => Promise<T>,
  bracket: TransactionBracket<T> = {},
): Promise<T> {
  if (isSqlTransaction(db) || !("$transaction" in db)) return runBracketed(db, fn, bracket);
  const { result, tasks } = await collectAfterCommit(() => sqlTransaction(db, fn, bracket));
  for (const task of tasks) startDetached(task);
  return result;
}

/** `fn` in a transaction a caller opened, with the bracket's statements as separate ones. */
async function runBracketed<D extends SqlDb, T>(
  tx: D,
  fn: (tx: D) => Promise<T>,
  bracket: TransactionBracket<T>,
): Promise<T> {
  await runFirstStatement(tx, bracket);
  const result = await fn(tx);
  await runLastStatement(tx, bracket, result);
  return result;
}
