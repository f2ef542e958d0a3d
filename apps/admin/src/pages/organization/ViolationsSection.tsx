import { Empty } from "../../components/States";
import { formatDateTime, formatUsage, humanize } from "../../format";
import type { Violation } from "./types";

export function ViolationsSection({
  violations,
  onExtend,
  onWaive,
}: {
  violations: Violation[];
  onExtend: (violation: Violation) => void;
  onWaive: (violation: Violation) => void;
}) {
  return (
    <section aria-labelledby="violations">
      <h2 id="violations">Violations</h2>
      {violations.length === 0 ? (
        <Empty>No violations.</Empty>
      ) : (
        <ul className="cards">
          {violations.map((violation) => (
            <li key={violation.id} className="card" data-testid={`violation-${violation.type}`}>
              <h3>
                {humanize(violation.type)}:{" "}
                {formatUsage(violation.type, violation.currentUsage, violation.limit)}{" "}
                <span className={`badge badge-${violation.status}`}>{violation.status}</span>
              </h3>
              <dl className="facts">
                <dt>Action</dt>
                <dd>{humanize(violation.action)}</dd>
                <dt>Detected</dt>
                <dd>{formatDateTime(violation.detectedAt)}</dd>
                <dt>Grace ends</dt>
                <dd data-testid="grace-ends">{formatDateTime(violation.graceEndsAt)}</dd>
                <dt>Waived until</dt>
                <dd data-testid="waived-until">{formatDateTime(violation.waivedUntil)}</dd>
                {violation.resolvedAt ? (
                  <>
                    <dt>Resolved</dt>
                    <dd>{formatDateTime(violation.resolvedAt)}</dd>
                  </>
                ) : null}
              </dl>
              {violation.status !== "resolved" ? (
                <div className="toolbar">
                  <button type="button" onClick={() => onExtend(violation)}>
                    Extend grace…
                  </button>
                  <button type="button" onClick={() => onWaive(violation)}>
                    Waive…
                  </button>
                </div>
              ) : null}
              {violation.history.length > 0 ? (
                <details>
                  <summary>History ({violation.history.length})</summary>
                  <ol className="history">
                    {violation.history.map((entry, index) => (
                      <li key={`${entry.at}-${index}`}>
                        {formatDateTime(entry.at)} — {humanize(entry.event)}
                        {entry.reason ? <span className="muted"> ({entry.reason})</span> : null}
                      </li>
                    ))}
                  </ol>
                </details>
              ) : null}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
