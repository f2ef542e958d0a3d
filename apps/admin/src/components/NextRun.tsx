import { formatDateTime, formatRelative } from "../format";

/**
 * When a job runs next: the time to the second, and how far off it is from `now`, the instant
 * the API reckoned the next run from (its answer's `generatedAt`). Not the browser's clock at
 * drawing: a page drawn a moment after the run's time would say "1 s ago" of a next run.
 */
export function NextRun({ at, now }: { at: string | null; now: number }) {
  if (!at) return <>—</>;
  return (
    <>
      <time dateTime={at}>{formatDateTime(at)}</time>{" "}
      <span className="muted block">({formatRelative(at, now)})</span>
    </>
  );
}
