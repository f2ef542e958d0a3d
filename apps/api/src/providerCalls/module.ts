import type { JobDefinition } from "../lib/job";
import { MINUTE_MS } from "../lib/time";
import { createProviderCalls, type ProviderCalls, type ProviderCallsDeps } from "./queue";

export interface ProviderCallsModuleDeps extends ProviderCallsDeps {
  batchSize: number;
  concurrency: number;
}

export interface ProviderCallsModule {
  /** The queue: features register their executors and queue calls in their transactions. */
  calls: ProviderCalls;
  jobs: JobDefinition[];
}

/** The provider-call queue of one app, and the job that retries what is still due. */
export function createProviderCallsModule(deps: ProviderCallsModuleDeps): ProviderCallsModule {
  const calls = createProviderCalls(deps);
  return {
    calls,
    jobs: [
      {
        name: "retryProviderCalls",
        schedule: "* * * * *",
        leaseMs: 15 * MINUTE_MS,
        description:
          "Make provider calls still due (a deleted organization's subscription cancel, Checkout expiry, late refund; its bots sent home)",
        async run() {
          const result = await calls.processDue({
            batchSize: deps.batchSize,
            concurrency: deps.concurrency,
          });
          return { rowsAffected: result.done, summary: { ...result } };
        },
      },
    ],
  };
}
