import type { ReactNode } from "react";
import type { ApiFailure } from "../api";

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p className="state state-loading" role="status" aria-live="polite">
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="state state-empty">{children}</p>;
}

/** An API failure with what an operator quotes in a bug report: code and request id. */
export function ErrorState({ error, onRetry }: { error: ApiFailure; onRetry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <p>
        <strong>{error.status ? `Error ${error.status}` : "Error"}</strong> {error.message}
      </p>
      <p className="muted">
        Code <code>{error.code}</code>
        {error.requestId ? (
          <>
            {" "}
            · request id <code data-testid="request-id">{error.requestId}</code>
          </>
        ) : null}
      </p>
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}
