/**
 * Safe retries for the typed client: a `fetch` that gives every write (POST, PATCH, DELETE) an
 * `Idempotency-Key` (a fresh UUID unless the caller sent one), kept across its retries, so that a
 * retry after a lost answer replays the first answer instead of writing twice (the API stores
 * answers for 24 h). It retries network errors, 5xx, 429 and 409 IDEMPOTENCY_KEY_IN_USE, reads
 * and writes alike, waiting what `Retry-After` says or else a capped exponential backoff with
 * full jitter.
 */

/** How the client retries. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3); 0 sends every request once. */
  retries?: number;
  /** The first backoff's upper bound in ms (default 250); it doubles with each retry. */
  minDelayMs?: number;
  /** The largest backoff in ms (default 8000). */
  maxDelayMs?: number;
  /**
   * The longest `Retry-After` waited for, in ms (default 60000): an answer asking for longer is
   * returned as it is (a spent request budget resets within a minute).
   */
  maxRetryAfterMs?: number;
  /** How to wait (tests record the delays). Default: a timer, cut short by the request's signal. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
const WRITE_METHODS = new Set(["POST", "PATCH", "DELETE"]);

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException("The request was aborted", "AbortError");
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** `Retry-After` in ms (seconds or an HTTP date), or null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Whether the answer is worth asking again: 5xx, 429, or 409 for a key whose request runs. */
async function isRetryable(response: Response): Promise<boolean> {
  if (response.status >= 500 || response.status === 429) return true;
  if (response.status !== 409) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body.error?.code === "IDEMPOTENCY_KEY_IN_USE";
  } catch {
    return false;
  }
}

/** `fetchImpl` with keys on writes and retries (see the module comment). */
export function retryingFetch(
  fetchImpl: (request: Request) => Promise<Response>,
  options: RetryOptions = {},
): (request: Request) => Promise<Response> {
  const retries = options.retries ?? 3;
  const minDelayMs = options.minDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 8_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const sleep = options.sleep ?? defaultSleep;
  const backoff = (attempt: number) =>
    Math.random() * Math.min(maxDelayMs, minDelayMs * 2 ** attempt);

  return async (original) => {
    let request = original;
    if (
      WRITE_METHODS.has(request.method.toUpperCase()) &&
      !request.headers.has(IDEMPOTENCY_KEY_HEADER)
    ) {
      const headers = new Headers(request.headers);
      headers.set(IDEMPOTENCY_KEY_HEADER, globalThis.crypto.randomUUID());
      request = new Request(request, { headers });
    }
    for (let attempt = 0; ; attempt++) {
      const isLast = attempt >= retries;
      // Each attempt sends a copy: a body can be read once.
      const sent = isLast ? request : request.clone();
      let response: Response;
      try {
        response = await fetchImpl(sent);
      } catch (error) {
        if (isLast || request.signal.aborted) throw error;
        await sleep(backoff(attempt), request.signal);
        continue;
      }
      if (isLast || !(await isRetryable(response))) return response;
      const asked = retryAfterMs(response.headers.get("retry-after"));
      if (asked !== null && asked > maxRetryAfterMs) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(asked ?? backoff(attempt), request.signal);
    }
  };
}
