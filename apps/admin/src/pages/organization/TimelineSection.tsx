import { Empty } from "../../components/States";
import { formatDateTime, humanize } from "../../format";
import type { Detail } from "./types";

/** Payments, violation events and notices of the organization in one list, newest first. */
export function TimelineSection({ data }: { data: Detail }) {
  const items = [
    ...data.paymentTimeline.map((entry) => ({
      at: entry.at,
      kind: "payment",
      text: `${humanize(entry.kind)}: ${entry.detail}`,
    })),
    ...data.violations.flatMap((violation) =>
      violation.history.map((entry) => ({
        at: entry.at,
        kind: "violation",
        text: `${humanize(violation.type)} violation ${humanize(entry.event)}${entry.reason ? ` (${entry.reason})` : ""}`,
      })),
    ),
    ...data.notices.map((notice) => ({
      at: notice.createdAt,
      kind: "notice",
      text: `notice ${humanize(notice.type)} (${notice.status})`,
    })),
  ].sort((a, b) => b.at.localeCompare(a.at));
  return (
    <section aria-labelledby="timeline">
      <h2 id="timeline">Timeline</h2>
      {items.length === 0 ? (
        <Empty>Nothing has happened yet.</Empty>
      ) : (
        <ol className="timeline">
          {items.map((item, index) => (
            <li key={`${item.at}-${index}`} className={`timeline-${item.kind}`}>
              <time dateTime={item.at}>{formatDateTime(item.at)}</time> {item.text}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
