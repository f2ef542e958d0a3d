/**
 * Safe retries for the typed client: a `fetch` that gives every write (POST, PATCH, DELETE) an
 * `Idempotency-Key` (a fresh UUID unless the caller sent one), kept across its retries, so that a
 * retry after a lost answer replays the first answer instead of writing twice (the API stores
 * answers for 24 h). It retries network errors, 5xx, 429 and 409 IDEMPOTENCY_KEY_IN_USE, reads
 * and writes alike, waiting what `Retry-After` says (plus a little jitter, so that the clients
 * told the same time do not all come back at once) or else a capped exponential backoff with
 * full jitter. A write's answer is read whole before it is returned, so that an answer cut off
 * after its headers is retried with the write's key like any lost answer (the caller, who does
 * not know the generated key, could not repeat the write safely).
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
  /**
   * The longest one attempt may take, in ms, until its answer's headers (a write's: its whole
   * answer) arrive; then it is aborted and counts as a network error (retried, or thrown as a
   * `TimeoutError` after the last attempt). Default: none, as for `fetch` (some writes wait for
   * long work: a job run, a recording upload). With it, a call takes at most about
   * `(retries + 1) * timeoutMs` plus the waits; the request's own `signal` bounds it whatever
   * the options.
   */
  timeoutMs?: number;
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

/** An HTTP date starts with the day's name (IMF-fixdate, RFC 850 and asctime forms). */
const HTTP_DATE = /^(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,? /i;

/**
 * `Retry-After` in ms (seconds or an HTTP date), or null when absent or unreadable. Anything
 * else (`-1`, `1.5`, which `Date.parse` would take for dates long past) is unreadable, so the
 * caller backs off instead of retrying at once.
 */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  const text = value?.trim() ?? "";
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!HTTP_DATE.test(text)) return null;
  // asctime has no zone: HTTP dates are in GMT.
  const at = Date.parse(/(?:GMT|UTC|[+-]\d{4})$/i.test(text) ? text : `${text} GMT`);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Statuses whose answers have no body (`new Response` refuses one). */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * The answer with its body read whole: a connection lost while it is read fails here, as a
 * network error, instead of in the caller's `json()`.
 */
async function readWhole(response: Response): Promise<Response> {
  const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer();
  const whole = new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  Object.defineProperty(whole, "url", { value: response.url });
  Object.defineProperty(whole, "redirected", { value: response.redirected });
  return whole;
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
  const timeoutMs = options.timeoutMs;
  const sleep = options.sleep ?? defaultSleep;
  const backoff = (attempt: number) =>
    Math.random() * Math.min(maxDelayMs, minDelayMs * 2 ** attempt);

  /** One attempt: `sent`, aborted after `timeoutMs`; a write's answer read whole. */
  async function send(sent: Request, isWrite: boolean): Promise<Response> {
    if (timeoutMs === undefined) {
      const response = await fetchImpl(sent);
      return isWrite ? await readWhole(response) : response;
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(sent.signal.reason);
    if (sent.signal.aborted) onAbort();
    else sent.signal.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => {
      controller.abort(
        new DOMException(`The request timed out after ${timeoutMs} ms`, "TimeoutError"),
      );
    }, timeoutMs);
    try {
      const response = await fetchImpl(new Request(sent, { signal: controller.signal }));
      return isWrite ? await readWhole(response) : response;
    } finally {
      clearTimeout(timer);
      sent.signal.removeEventListener("abort", onAbort);
    }
  }

  return async (original) => {
    let request = original;
    const isWrite = WRITE_METHODS.has(request.method.toUpperCase());
    if (isWrite && !request.headers.has(IDEMPOTENCY_KEY_HEADER)) {
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
        response = await send(sent, isWrite);
      } catch (error) {
        if (isLast || request.signal.aborted) throw error;
        await sleep(backoff(attempt), request.signal);
        continue;
      }
      if (isLast || !(await isRetryable(response))) return response;
      const asked = retryAfterMs(response.headers.get("retry-after"));
      if (asked !== null && asked > maxRetryAfterMs) return response;
      await response.body?.cancel().catch(() => undefined);
      // Jitter on top of Retry-After too: the clients of one organization whose budget is spent
      // are all told the same reset time.
      await sleep((asked ?? 0) + backoff(attempt), request.signal);
    }
  };
}
