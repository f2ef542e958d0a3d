import { formatBytes } from "../../format";
import type { Detail } from "./types";

const LIMIT_LABELS: Record<string, string> = {
  meetingsPerMonth: "Meetings this month",
  teamMembers: "Team members",
  storageBytes: "Storage",
};

export function UsageSection({ usage }: { usage: Detail["usage"] }) {
  return (
    <section aria-labelledby="usage">
      <h2 id="usage">Usage against limits</h2>
      <ul className="usage">
        {usage.map((row) => {
          const isBytes = row.limit === "storageBytes";
          const show = (value: number) => (isBytes ? formatBytes(value) : String(value));
          const ratio = row.max === null || row.max === 0 ? null : row.used / row.max;
          return (
            <li key={row.limit}>
              <span>{LIMIT_LABELS[row.limit] ?? row.limit}</span>
              <span className={ratio !== null && ratio > 1 ? "over" : undefined}>
                {show(row.used)} / {row.max === null ? "unlimited" : show(row.max)}
              </span>
              {ratio !== null ? (
                <meter min={0} max={1} high={0.9} optimum={0.5} value={Math.min(1, ratio)}>
                  {Math.round(ratio * 100)}%
                </meter>
              ) : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
