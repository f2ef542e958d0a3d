import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { Prisma, PrismaClient } from "../generated/client";
import { QUERY_READ_TIMEOUT } from "./pgErrors";
import { attachPool, noteTransactionStarted, type TransactionConnection } from "./sql";

export interface CreatePrismaClientOptions {
  /** Largest number of pooled connections (pg's default is 10). */
  maxConnections?: number;
  /**
   * Longest wait for a connection, in ms: for a pooled one to be free, or for a new one to be
   * established (default 5000; so that requests and health checks fail fast).
   */
  connectionTimeoutMs?: number;
  /**
   * Longest a statement may run, in ms. The server cancels it then (`statement_timeout`); when
   * the server does not answer at all (a stalled network or database), the client gives up
   * STATEMENT_GRACE_MS later and drops the connection. Unset: no limit (tools, long-running jobs).
   */
  statementTimeoutMs?: number;
  /** Prisma log levels; `{ emit: "event", level: "query" }` lets callers count queries. */
  log?: (Prisma.LogLevel | Prisma.LogDefinition)[];
}

/**
 * How much longer than the statement timeout the client waits for an answer before it gives up on
 * a silent server: long enough for the server's own cancellation to arrive (the connection then
 * stays usable), short enough to fail a request quickly.
 */
export const STATEMENT_GRACE_MS = 1_000;

/** Idle pooled connections are probed after this long, so a vanished peer is noticed. */
const KEEPALIVE_DELAY_MS = 10_000;

/**
 * pg's client, except that a query that outlived `query_timeout` takes its connection down. pg
 * rejects such a query but keeps the connection waiting for the server's reply: the next query on
 * it would queue behind the lost one, inside whatever transaction was open. An ended client is
 * discarded by the pool when it is released.
 */
class TimeoutDiscardingClient extends pg.Client {
  // One signature for pg's dozen overloads: the arguments and the result pass through unchanged.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(...args: unknown[]): any {
    const result: unknown = (super.query as (...params: unknown[]) => unknown).apply(this, args);
    // Promise form only: pg's pool uses the callback form and discards the client on any error.
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (error instanceof Error && error.message === QUERY_READ_TIMEOUT) void this.end();
      });
    }
    return result;
  }
}

type PgAdapter = Awaited<ReturnType<PrismaPg["connect"]>>;
type PgTransaction = Awaited<ReturnType<PgAdapter["startTransaction"]>>;

/**
 * Hands a transaction's connection back to the pool even when its COMMIT or ROLLBACK fails.
 * Prisma (6.19) releases the connection only after that statement succeeded; on a connection that
 * broke or timed out it fails, and the connection would stay checked out for good: a few database
 * stalls would leave the pool with no connection at all. Released here, a broken connection is
 * discarded by the pool. "COMMIT" and "ROLLBACK" are the statements Prisma's transaction manager
 * sends through adapter-pg; apps/api/test/system/databaseStall.int.test.ts fails if they stop matching.
 */
function releaseOnFailedEnd(
  tx: PgTransaction,
  connection: TransactionConnection | undefined,
): PgTransaction {
  const [executeRaw, commit, rollback] = [
    tx.executeRaw.bind(tx),
    tx.commit.bind(tx),
    tx.rollback.bind(tx),
  ];
  let isReleased = false;
  const releaseOnce = async (release: () => Promise<void>) => {
    if (isReleased) return;
    isReleased = true;
    // Plain statements (sql.ts) may no longer use the connection: it goes back to the pool.
    if (connection) connection.isOpen = false;
    await release();
  };
  tx.executeRaw = async (query) => {
    try {
      return await executeRaw(query);
    } catch (error) {
      if (query.sql === "COMMIT" || query.sql === "ROLLBACK") await releaseOnce(rollback);
      throw error;
    }
  };
  tx.commit = () => releaseOnce(commit);
  tx.rollback = () => releaseOnce(rollback);
  return tx;
}

/** PrismaPg whose transactions always give their connection back (`releaseOnFailedEnd`). */
class SafePrismaPg extends PrismaPg {
  override async connect(): Promise<PgAdapter> {
    const adapter = await super.connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const tx = await startTransaction(isolationLevel);
      // adapter-pg's transaction keeps its pooled connection as `client`.
      const client = (tx as unknown as { client?: pg.PoolClient }).client;
      return releaseOnFailedEnd(tx, client ? noteTransactionStarted(client) : undefined);
    };
    return adapter;
  }
}

/**
 * A Prisma client over the pg driver adapter (the Rust-free client: no native engine is
 * downloaded or loaded). One per process and database; close it with `$disconnect()`.
 * Every wait on the database is bounded when `statementTimeoutMs` is set: for a connection
 * (`connectionTimeoutMs`), for each statement, and TCP keepalive probes idle connections.
 */
export function createPrismaClient(
  connectionString: string,
  options: CreatePrismaClientOptions = {},
): PrismaClient {
  const statementTimeoutMs = options.statementTimeoutMs;
  // One pool for Prisma's adapter and the plain statements of the hot paths (sql.ts); the
  // adapter ends it on `$disconnect()`.
  const pool = new pg.Pool({
    connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
    ...(statementTimeoutMs === undefined
      ? {}
      : {
          statement_timeout: statementTimeoutMs,
          query_timeout: statementTimeoutMs + STATEMENT_GRACE_MS,
        }),
    Client: TimeoutDiscardingClient,
  });
  // An idle connection that breaks is dropped by the pool, which then emits "error": with no
  // listener that would end the process (the adapter adds its own only on its first query).
  pool.on("error", () => undefined);
  const adapter = new SafePrismaPg(pool, { disposeExternalPool: true });
  const client = new PrismaClient({
    adapter,
    log: options.log ?? [],
    // Errors say what failed in one line ("Raw query failed. Code: `57014`. ..."), not Prisma's
    // pretty format: a call site quoted from its minified runtime, tens of kilobytes, where job
    // runs, logs and start-up failures showed the source and cut the cause off.
    errorFormat: "minimal",
    // An interactive transaction starts by taking a pooled connection: it waits for one as long
    // as a plain statement does (Prisma's own default, 2 s, fails busy transactions first).
    transactionOptions: { maxWait: options.connectionTimeoutMs ?? 5_000 },
  });
  attachPool(client, pool);
  // Prisma ends the pool only if it ever connected; a client that served plain statements alone
  // must close it too.
  const disconnect = client.$disconnect.bind(client);
  client.$disconnect = async () => {
    await disconnect();
    if (!pool.ended) await pool.end();
  };
  return client;
}

/** A client or an interactive transaction: services take one so callers can compose them. */
export type Db = PrismaClient | Prisma.TransactionClient;

/** True when `error` is Prisma's unique-constraint violation (P2002). */
export function isUniqueViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002";
}

/** True when `error` is Prisma's "record to update/delete not found" (P2025). */
export function isRecordNotFound(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2025";
}
