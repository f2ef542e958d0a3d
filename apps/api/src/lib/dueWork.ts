import pLimit from "p-limit";

/**
 * Durable work retried by a job (recording imports, provider calls): rows claimed one at a time
 * by a worker, each attempt's failure scheduling the next with backoff.
 */

/** The wait before attempt `attempts + 1`: 30 s, 2 min, 8 min, 32 min, then every hour. */
export function backoffDelayMs(attempts: number): number {
  return Math.min(30_000 * 4 ** Math.max(0, attempts - 1), 60 * 60 * 1000);
}

/**
 * A job's pass: every row `findDue` returns, in batches of `batchSize`, `concurrency` at a time,
 * until a batch holds only rows seen before (each processed row leaves the due set: done,
 * failed, due later, or held by another worker; a batch of rows seen before means no progress).
 * The outcome of each row processed.
 */
export async function processAllDue<Outcome>(input: {
  findDue: (limit: number) => Promise<string[]>;
  process: (id: string) => Promise<Outcome>;
  batchSize: number;
  concurrency: number;
}): Promise<Outcome[]> {
  const limit = pLimit(input.concurrency);
  const seen = new Set<string>();
  const outcomes: Outcome[] = [];
  for (;;) {
    const due = await input.findDue(input.batchSize);
    const fresh = due.filter((id) => !seen.has(id));
    if (fresh.length === 0) return outcomes;
    for (const id of fresh) seen.add(id);
    outcomes.push(...(await Promise.all(fresh.map((id) => limit(() => input.process(id))))));
  }
}
