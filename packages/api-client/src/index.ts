import createClient, { type Client, type ClientOptions } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths } from "./schema";

/** The typed client of the zigznote API (openapi-fetch over the generated `paths`). */
export type ApiClient = Client<paths>;

/** A schema of the OpenAPI document by name (`Schema<"Error">`). */
export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];

/** The error body every non-2xx answer has: `{ error: { code, message, details }, requestId }`. */
export interface ApiErrorBody {
  error: { code: string; message: string; details?: unknown };
  requestId?: string;
}

/**
 * A client of the API at `baseUrl` ("" for the page's own origin). Browser callers send the
 * session cookie (`credentials: "same-origin"`, fetch's default) and nothing else.
 */
export function createApiClient(options: ClientOptions = {}): ApiClient {
  return createClient<paths>({ baseUrl: "", ...options });
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
