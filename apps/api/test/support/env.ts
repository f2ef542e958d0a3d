import { DEFAULT_TEST_DATABASE_URL } from "@zigznote/database/testing";

// Tests may read the process environment directly: they are not the app.
const baseTestDatabaseUrl = process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;

/**
 * The database of Jest worker `workerId` (1..maxWorkers): `<TEST_DATABASE_URL>_w<id>`. Suites
 * running at the same time are in different workers, so they never share a database: the
 * billing jobs (and every other job) act on the whole database with a clock a suite moved days
 * ahead, and would otherwise sweep up another suite's rows (its past_due subscription
 * suspended while it still expects past_due).
 */
export function workerDatabaseUrl(workerId: string | number): string {
  const url = new URL(baseTestDatabaseUrl);
  url.pathname = `${url.pathname}_w${workerId}`;
  return url.toString();
}

/** This worker's database (Jest sets JEST_WORKER_ID, also "1" when running in band). */
export const testDatabaseUrl = workerDatabaseUrl(process.env.JEST_WORKER_ID ?? "1");
export const testRedisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
