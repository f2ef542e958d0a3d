import type { Prisma, PrismaClient } from "@zigznote/database";
import type { ViolationSettings } from "../billing";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import type { Notices } from "../notifications";

/** A job as the console lists it. */
export interface AdminJobInfo {
  name: string;
  schedule: string;
  description: string;
}

/** What a manual run gave (the runner's outcome). */
export type AdminJobOutcome =
  | { status: "succeeded"; runId: string; rowsAffected: number }
  | { status: "failed"; runId: string; error: string }
  | { status: "skipped"; reason: "already_ran_this_tick" | "previous_run_in_progress" };

/**
 * The app's jobs, handed in by the composition root (jobs sit above every feature, so admin does
 * not import them).
 */
export interface AdminJobs {
  list(): readonly AdminJobInfo[];
  /** The zone the schedules are read in (CRON_TIMEZONE). */
  timezone: string;
  /** When `name`'s schedule fires next after `after`; null for a name no job has. */
  nextRunAt(name: string, after: Date): Date | null;
  /**
   * Runs `name` now through the runner (one run at a time across instances), or null if unknown.
   * `onClaimed` runs in the transaction that claims the run, before the job starts (not at all
   * when the run is skipped): what it writes commits with the claim or nothing runs.
   */
  run(
    name: string,
    options?: {
      onClaimed?: (
        tx: Prisma.TransactionClient,
        run: { runId: string; startedAt: Date },
      ) => Promise<void>;
    },
  ): Promise<AdminJobOutcome | null>;
}

/** What the admin feature needs. */
export interface AdminDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** Billing's violation settings: a re-check runs billing's own check. */
  violations: ViolationSettings;
  /** The outbox: a resent notice is delivered after the commit. */
  notices: Notices;
  jobs: AdminJobs;
}
