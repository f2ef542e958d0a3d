/** Load through autocannon, shared by the benches that drive an app server for a while. */
import autocannon from "autocannon";

/** What a run of requests left: latencies, answers by status, time and connection errors. */
export interface LoadSample {
  latencies: number[];
  seconds: number;
  statuses: Map<number, number>;
  errors: number;
}

/** Runs autocannon with `options` until it ends, adding what it measured to `into`. */
export function runLoad(options: autocannon.Options, into: LoadSample): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const instance = autocannon(options, (error: unknown, result) => {
      if (error) {
        reject(error instanceof Error ? error : new Error("autocannon failed", { cause: error }));
        return;
      }
      into.seconds += result.duration;
      into.errors += result.errors;
      resolve();
    });
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      into.latencies.push(responseTime);
      into.statuses.set(statusCode, (into.statuses.get(statusCode) ?? 0) + 1);
    });
  });
}

/** Responses per second of a run (or of anything that counts latencies over seconds). */
export function requestsPerSecond(sample: Pick<LoadSample, "latencies" | "seconds">): number {
  return sample.latencies.length / sample.seconds;
}
