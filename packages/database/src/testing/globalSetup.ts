import { DEFAULT_TEST_DATABASE_URL, prepareTestDatabase } from "./prepare";

export default async function globalSetup(): Promise<void> {
  await prepareTestDatabase(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
}
