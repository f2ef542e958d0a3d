import { prepareTestDatabase } from "@zigznote/database/testing";
import { workerDatabaseUrl } from "./env";

/**
 * Once per `jest` run: each worker's database (env.ts) exists, is migrated and has the plans.
 * Workers are numbered 1..maxWorkers (1 when running in band).
 */
export default async function globalSetup(globalConfig: { maxWorkers: number }): Promise<void> {
  const workers = Math.max(1, globalConfig.maxWorkers);
  for (let id = 1; id <= workers; id += 1) {
    await prepareTestDatabase(workerDatabaseUrl(id));
  }
}
