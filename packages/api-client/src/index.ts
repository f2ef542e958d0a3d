import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import { retryingFetch, type RetryOptions } from "./retry";
import type { components, paths } from "./schema";

export type { components, paths } from "./schema";
export { IDEMPOTENCY_KEY_HEADER, retryAfterMs, retryingFetch, type RetryOptions } from "./retry";

/** The typed client of the zigznote API (openapi-fetch over the generated `paths`). */
export type ApiClient = Client<paths>;

/** A schema of the OpenAPI document by name (`Schema<"Error">`). */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];

/** The error body every non-2xx answer has: `{ error: { code, message, details }, requestId }`. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
  requestId?: string;
}

export interface ApiClientOptions extends ClientOptions {
  /**
   * Retries (see retry.ts): every write gets an Idempotency-Key (unless the call passes one in
   * `params.header` or `headers`), and network errors, 5xx, 429 and 409 IDEMPOTENCY_KEY_IN_USE
   * are retried up to `retries` times (default 3). `false`: each request is sent once, and
   * writes get no key.
   */
  retry?: RetryOptions | false;
}

/**
 * A client of the API at `baseUrl` ("" for the page's own origin). Browser callers send the
 * session cookie (`credentials: "same-origin"`, fetch's default) and nothing else.
 */
export function createApiClient(options: ApiClientOptions = {}): ApiClient {
  const { retry, fetch, ...rest } = options;
  const baseFetch = fetch ?? ((request: Request) => globalThis.fetch(request));
  return createClient<paths>({
    baseUrl: "",
    ...rest,
    fetch: retry === false ? baseFetch : retryingFetch(baseFetch, retry),
  });
}

/** Whether `value` has the API's error body shape. */
export function isApiErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== "object" || value === null) return false;
  const error = (value as { error?: unknown }).error;
  return (
    typeof error === "object" &&
    error !== null &&
    typeof (error as { code?: unknown }).code === "string" &&
    typeof (error as { message?: unknown }).message === "string"
  );
}
