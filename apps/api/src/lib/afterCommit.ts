import { AsyncLocalStorage } from "node:async_hooks";
import {
  runPlainTransaction,
  runTransaction,
  type Prisma,
  type PrismaClient,
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
 * `transaction` for work made of plain statements only (`queryRows`, `executeStatement`):
 * `runPlainTransaction`, without Prisma's interactive transaction; then the after-commit tasks.
 */
export async function plainTransaction<T>(
  db: PrismaClient,
  fn: (tx: Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  const { result, tasks } = await collectAfterCommit(() => runPlainTransaction(db, fn));
  for (const task of tasks) startDetached(task);
  return result;
}
