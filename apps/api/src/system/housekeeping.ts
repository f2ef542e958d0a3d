import type { PrismaClient } from "@zigznote/database";
import { deleteExpiredIdempotencyKeys } from "../http/idempotencyStore";
import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";

/** The kernel's own jobs (no feature owns its tables): expired Idempotency-Key answers. */
export function kernelJobs(deps: { db: PrismaClient; batchSize: number }): JobDefinition[] {
  return [
    {
      name: "deleteExpiredIdempotencyKeys",
      schedule: "20 * * * *",
      leaseMs: 30 * MINUTE_MS,
      description:
        "Delete Idempotency-Key answers older than IDEMPOTENCY_KEY_TTL_HOURS, in batches",
      run: async ({ now }) => ({
        rowsAffected: await deleteExpiredIdempotencyKeys(deps.db, {
          now,
          batchSize: deps.batchSize,
        }),
      }),
    },
  ];
}
