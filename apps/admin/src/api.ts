import { createApiClient, isApiErrorBody, type Schema } from "@zigznote/api-client";
import { useCallback, useEffect, useRef, useState } from "react";

/** The console's one API client: same origin, the `__session` cookie authenticates. */
export const api = createApiClient({ baseUrl: "", credentials: "same-origin" });

export type { Schema };

/** A failed API call as the console shows it: status, code, message and the request id. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
    readonly details: unknown = null,
  ) {
    super(message);
    this.name = "ApiFailure";
  }
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful call, or an ApiFailure carrying the API's error body. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (cause) {
    throw new ApiFailure(
      0,
      "NETWORK_ERROR",
      `The API could not be reached (${String(cause)})`,
      null,
    );
  }
  const { data, error, response } = result;
  if (response.ok && data !== undefined) return data;
  const headerId = response.headers.get("x-request-id");
  if (isApiErrorBody(error)) {
    return Promise.reject(
      new ApiFailure(
        response.status,
        error.error.code,
        error.error.message,
        error.requestId ?? headerId,
        error.error.details ?? null,
      ),
    );
  }
  throw new ApiFailure(
    response.status,
    `HTTP_${response.status}`,
    `The API answered ${response.status} ${response.statusText}`,
    headerId,
  );
}

/** Whether `error` is the API's optimistic-concurrency refusal (someone changed the target). */
export function isConflict(error: unknown): error is ApiFailure {
  return error instanceof ApiFailure && error.status === 409;
}

export type LoadState<T> =
  | { status: "loading"; data: T | undefined; error: null }
  | { status: "ready"; data: T; error: null }
  | { status: "error"; data: T | undefined; error: ApiFailure };

/**
 * Loads `load()` whenever `key` changes (and on `reload()`); an older answer never replaces a
 * newer one. Data already shown stays while a reload runs.
 */
export function useLoad<T>(
  load: () => Promise<T>,
  key: string,
): LoadState<T> & { reload: () => void } {
  const [state, setState] = useState<LoadState<T>>({
    status: "loading",
    data: undefined,
    error: null,
  });
  const [generation, setGeneration] = useState(0);
  const latest = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const ticket = ++latest.current;
    setState((previous) => ({ status: "loading", data: previous.data, error: null }));
    loadRef.current().then(
      (data) => {
        if (ticket === latest.current) setState({ status: "ready", data, error: null });
      },
      (error: unknown) => {
        if (ticket !== latest.current) return;
        const failure =
          error instanceof ApiFailure
            ? error
            : new ApiFailure(0, "CLIENT_ERROR", String(error), null);
        setState((previous) => ({ status: "error", data: previous.data, error: failure }));
      },
    );
  }, [key, generation]);

  const reload = useCallback(() => setGeneration((value) => value + 1), []);
  return { ...state, reload };
}
