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
      <FailureCodes failure={error} requestIdTestId="request-id" />
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

/** The line an operator quotes in a bug report: the error code and, when known, the request id. */
export function FailureCodes({
  failure,
  requestIdTestId,
}: {
  failure: ApiFailure;
  requestIdTestId?: string;
}) {
  return (
    <p className="muted">
      Code <code>{failure.code}</code>
      {failure.requestId ? (
        <>
          {" "}
          · request id <code data-testid={requestIdTestId}>{failure.requestId}</code>
        </>
      ) : null}
    </p>
  );
}
