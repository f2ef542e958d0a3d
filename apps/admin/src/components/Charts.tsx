/** Small SVG charts: no chart library for two figures. */

export interface DayCount {
  day: string;
  detected: number;
  resolved: number;
}

/** Violations detected (and resolved) per day, as paired bars. */
export function ViolationsOverTime({ days }: { days: DayCount[] }) {
  const width = 600;
  const height = 160;
  const pad = 24;
  const max = Math.max(1, ...days.map((day) => Math.max(day.detected, day.resolved)));
  const slot = (width - pad * 2) / Math.max(1, days.length);
  const bar = Math.max(1, slot / 2 - 1);
  const scale = (value: number) => ((height - pad * 2) * value) / max;
  const total = days.reduce((sum, day) => sum + day.detected, 0);
  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Violations detected per day over ${days.length} days: ${total} in all, at most ${max} in a day`}
      >
        <line x1={pad} y1={height - pad} x2={width - pad} y2={height - pad} className="axis" />
        <text x={pad} y={pad - 8} className="chart-label">
          {max}
        </text>
        {days.map((day, index) => {
          const x = pad + index * slot;
          return (
            <g key={day.day}>
              <title>{`${day.day}: ${day.detected} detected, ${day.resolved} resolved`}</title>
              <rect
                x={x}
                y={height - pad - scale(day.detected)}
                width={bar}
                height={scale(day.detected)}
                className="bar-detected"
              />
              <rect
                x={x + bar + 1}
                y={height - pad - scale(day.resolved)}
                width={bar}
                height={scale(day.resolved)}
                className="bar-resolved"
              />
            </g>
          );
        })}
        {days.length > 0 ? (
          <>
            <text x={pad} y={height - 6} className="chart-label">
              {days[0]?.day}
            </text>
            <text x={width - pad} y={height - 6} textAnchor="end" className="chart-label">
              {days[days.length - 1]?.day}
            </text>
          </>
        ) : null}
      </svg>
      <figcaption>
        <span className="key key-detected" /> detected <span className="key key-resolved" />{" "}
        resolved
      </figcaption>
    </figure>
  );
}

export interface JobRate {
  jobName: string;
  successRate24h: number | null;
  successRate7d: number | null;
}

/** Widest a job's name may make the label column; a longer name is cut with an ellipsis. */
const MAX_LABEL_CHARS = 36;
/**
 * A generous width per character of `.chart-label` (11 px sans-serif; camel-cased names average
 * about 6 px): the column is sized by the longest name, so no name runs into its bar.
 */
const LABEL_CHAR_WIDTH = 6.6;

/** A job's name as its row shows it (the whole name stays in the row's tooltip). */
function jobLabel(name: string): string {
  return name.length > MAX_LABEL_CHARS ? `${name.slice(0, MAX_LABEL_CHARS - 1)}…` : name;
}

/** Success rate per job over 24 h and 7 days, as horizontal bars. */
export function JobSuccessRates({ jobs }: { jobs: JobRate[] }) {
  const rowHeight = 34;
  const longest = Math.max(0, ...jobs.map((job) => jobLabel(job.jobName).length));
  const labelWidth = Math.max(120, Math.ceil(longest * LABEL_CHAR_WIDTH) + 12);
  const width = 600;
  const barWidth = width - labelWidth - 60;
  const height = Math.max(rowHeight, jobs.length * rowHeight) + 8;
  const rate = (value: number | null) =>
    value === null ? "no runs" : `${Math.round(value * 100)}%`;
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label="Job success rates">
        {jobs.map((job, index) => {
          const y = index * rowHeight + 4;
          return (
            <g key={job.jobName}>
              <title>{`${job.jobName}: ${rate(job.successRate24h)} over 24 h, ${rate(job.successRate7d)} over 7 days`}</title>
              <text x={0} y={y + 18} className="chart-label" data-testid="job-rate-label">
                {jobLabel(job.jobName)}
              </text>
              <rect
                x={labelWidth}
                y={y}
                width={barWidth}
                height={12}
                className="bar-track"
                data-testid="job-rate-track"
              />
              <rect
                x={labelWidth}
                y={y}
                width={barWidth * (job.successRate24h ?? 0)}
                height={12}
                className={
                  job.successRate24h !== null && job.successRate24h < 1 ? "bar-warn" : "bar-ok"
                }
              />
              <rect x={labelWidth} y={y + 15} width={barWidth} height={8} className="bar-track" />
              <rect
                x={labelWidth}
                y={y + 15}
                width={barWidth * (job.successRate7d ?? 0)}
                height={8}
                className="bar-week"
              />
              <text x={labelWidth + barWidth + 6} y={y + 12} className="chart-label">
                {rate(job.successRate24h)}
              </text>
            </g>
          );
        })}
      </svg>
      <figcaption>thick bar: 24 h · thin bar: 7 days</figcaption>
    </figure>
  );
}
