/**
 * `promise`, or a rejection with "timed out after <ms> ms" once `ms` pass first. The timer is
 * always cleared, so a probe that answers in time leaves nothing holding the event loop open.
 * The work itself is not cancelled: callers use it where a late answer is simply ignored.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
