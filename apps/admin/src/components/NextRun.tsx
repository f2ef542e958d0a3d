import { formatDateTime, formatRelative } from "../format";

/** When a job runs next: the time to the second, and how far off it is from `now`. */
export function NextRun({ at, now }: { at: string | null; now: number }) {
  if (!at) return <>—</>;
  return (
    <>
      <time dateTime={at}>{formatDateTime(at)}</time>{" "}
      <span className="muted block">({formatRelative(at, now)})</span>
    </>
  );
}
