import { PrismaPg } from "@prisma/adapter-pg";
import { Prisma, PrismaClient } from "../generated/client";

export interface CreatePrismaClientOptions {
  /** Largest number of pooled connections (pg's default is 10). */
  maxConnections?: number;
  /** Give up on a connection attempt after this many ms (so health checks fail fast). */
  connectionTimeoutMs?: number;
  /** Prisma log levels; `{ emit: "event", level: "query" }` lets callers count queries. */
  log?: (Prisma.LogLevel | Prisma.LogDefinition)[];
}

/**
 * A Prisma client over the pg driver adapter (the Rust-free client: no native engine is
 * downloaded or loaded). One per process and database; close it with `$disconnect()`.
 */
export function createPrismaClient(
  connectionString: string,
  options: CreatePrismaClientOptions = {},
): PrismaClient {
  const adapter = new PrismaPg({
    connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5_000,
  });
  return new PrismaClient({ adapter, log: options.log ?? [] });
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
