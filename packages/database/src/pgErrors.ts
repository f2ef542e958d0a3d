import { Prisma } from "../generated/client";

/**
 * What PostgreSQL said, however the error reached us: raised by `pg` itself, or wrapped by
 * Prisma's driver adapter (`meta.driverAdapterError.cause`, with `originalCode` for the SQLSTATE
 * and `constraint` for the index or fields). The one place that knows those shapes.
 */
export interface PostgresError {
  /** SQLSTATE, e.g. `23505` (unique_violation), `55P03` (lock_not_available). */
  sqlState: string | undefined;
  /** The unique index or constraint involved, when PostgreSQL named one. */
  constraint: string | undefined;
  /** The columns of the violated constraint, when the adapter reports them. */
  fields: string[] | undefined;
  message: string | undefined;
}

interface ErrorLike {
  kind?: unknown;
  code?: unknown;
  originalCode?: unknown;
  originalMessage?: unknown;
  message?: unknown;
  constraint?: unknown;
  meta?: { driverAdapterError?: unknown; target?: unknown };
  cause?: unknown;
}

function asString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The chain `error`, its adapter error, their causes... (each visited once). */
function* chainOf(error: unknown): Generator<ErrorLike> {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    const candidate = current as ErrorLike;
    yield candidate;
    current = candidate.meta?.driverAdapterError ?? candidate.cause;
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The PostgreSQL error behind `error`, or undefined when there is none. */
export function postgresErrorOf(error: unknown): PostgresError | undefined {
  for (const candidate of chainOf(error)) {
    // Prisma's own codes (P2002, P2010, ...) are not PostgreSQL's: look behind them.
    if (candidate instanceof Prisma.PrismaClientKnownRequestError) continue;
    const code = asString(candidate.originalCode) ?? asString(candidate.code);
    if (!code || !SQLSTATE.test(code)) continue;
    const constraint = candidate.constraint as
      { index?: unknown; fields?: unknown } | string | undefined;
    const index = typeof constraint === "string" ? constraint : asString(constraint?.index);
    const fields =
      typeof constraint === "object" && Array.isArray(constraint.fields)
        ? constraint.fields.map(String)
        : undefined;
    const message = asString(candidate.originalMessage) ?? asString(candidate.message);
    return {
      sqlState: code,
      constraint: index ?? /constraint "([^"]+)"/.exec(message ?? "")?.[1],
      fields,
      message,
    };
  }
  return undefined;
}

/** True when PostgreSQL answered `sqlState` somewhere behind `error`. */
export function hasSqlState(error: unknown, sqlState: string): boolean {
  return postgresErrorOf(error)?.sqlState === sqlState;
}

/**
 * The unique index (or, from the model API, the fields) a unique violation names; undefined when
 * `error` is not a unique violation. `""` when it is one whose index is unknown.
 */
export function uniqueViolationOf(
  error: unknown,
): { constraint: string | undefined; fields: string[] | undefined } | undefined {
  const isP2002 = error instanceof Prisma.PrismaClientKnownRequestError && error.code === "P2002";
  const postgres = postgresErrorOf(error);
  if (!isP2002 && postgres?.sqlState !== "23505") return undefined;
  const target =
    error instanceof Prisma.PrismaClientKnownRequestError ? error.meta?.target : undefined;
  return {
    constraint: postgres?.constraint,
    fields: Array.isArray(target) ? target.map(String) : postgres?.fields,
  };
}

/** What pg says when a query got no answer within `query_timeout`. */
export const QUERY_READ_TIMEOUT = "Query read timeout";

/** pg's and pg-pool's messages when a connection could not be had or was lost. */
const UNAVAILABLE_MESSAGES = [
  QUERY_READ_TIMEOUT,
  "timeout exceeded when trying to connect", // waited DATABASE_POOL_TIMEOUT_MS for a connection
  "Connection terminated", // "... unexpectedly", "... due to connection timeout"
  "Client was closed and is not queryable",
  "Client has encountered a connection error and is not queryable",
  "Cannot use a pool after calling end on the pool",
];

const UNAVAILABLE_CODES = new Set([
  // PostgreSQL: statement timeout or cancel, server shutting down or starting, no connection slot
  "57014",
  "57P01",
  "57P02",
  "57P03",
  "53300",
  // Prisma: server unreachable, timed out, closed the connection; pool timeout; too many connections
  "P1001",
  "P1002",
  "P1008",
  "P1017",
  "P2024",
  "P2037",
  // sockets
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
]);

function isUnavailableCode(code: unknown): boolean {
  // PostgreSQL's class 08: connection exceptions.
  return typeof code === "string" && (UNAVAILABLE_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code));
}

/** The driver adapter's names for the same conditions (`DriverAdapterError` causes). */
const UNAVAILABLE_KINDS = new Set([
  "DatabaseNotReachable",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
]);

/**
 * True when `error` says the database is unavailable right now (it did not answer in time,
 * refused or dropped the connection, or has no connection to give) rather than that the query
 * was wrong: retrying later may succeed. Looks through Prisma's and the driver adapter's wrappers.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (const candidate of chainOf(error)) {
    const { message, code, originalCode, kind } = candidate;
    if (isUnavailableCode(code) || isUnavailableCode(originalCode)) return true;
    if (typeof kind === "string" && UNAVAILABLE_KINDS.has(kind)) return true;
    if (
      candidate instanceof Error &&
      typeof message === "string" &&
      UNAVAILABLE_MESSAGES.some((known) => message.startsWith(known))
    ) {
      return true;
    }
  }
  return false;
}
