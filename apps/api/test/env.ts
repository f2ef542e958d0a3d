import { DEFAULT_TEST_DATABASE_URL } from "@zigznote/database/testing";

// Tests may read the process environment directly: they are not the app.
export const testDatabaseUrl = process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;
export const testRedisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
