/**
 * Jobs: the runner (one run per tick across instances, recorded) and the scheduler. The jobs
 * themselves are declared by the features' modules beside their work; the composition root
 * collects them into the app's one list (`AppContext.jobs`).
 */
export {
  runJob,
  type JobDefinition,
  type JobResult,
  type ClaimedRun,
  type JobRunContext,
  type RunOutcome,
} from "./runner";
export { createJobScheduler, nextRunOf, type JobScheduler } from "./scheduler";
export type { JobRunnerDeps } from "./deps";
