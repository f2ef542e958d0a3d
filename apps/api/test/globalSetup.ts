import { prepareTestDatabase } from "@zigznote/database/testing";
import { testDatabaseUrl } from "./env";

/** Once per `jest` run: the test database exists, is migrated and has the plans. */
export default async function globalSetup(): Promise<void> {
  await prepareTestDatabase(testDatabaseUrl);
}
