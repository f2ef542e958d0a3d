import type { PrismaClient } from "@zigznote/database";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { Metrics } from "../lib/metrics";

/** What the runner and the scheduler need: where runs are recorded, counted and logged. */
export interface JobRunnerDeps {
  db: PrismaClient;
  logger: Logger;
  clock: Clock;
  metrics: Pick<Metrics, "jobRuns" | "jobDuration" | "jobRowsAffected">;
}
