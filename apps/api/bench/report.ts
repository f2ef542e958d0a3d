/** What the benches print: percentiles of sorted latencies and aligned tables. */

/** The `p`th percentile of `sorted` (ascending); NaN when it is empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Left-aligned first column, right-aligned others. */
export function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
        )
        .join("  "),
    )
    .join("\n");
}

/**
 * How far apart the rounds of a comparison were: `min-max (median m)` of the per-round ratios.
 * A pooled ratio whose target lies inside this range is within the run's noise, whichever side
 * of the target it fell on.
 */
export function roundSpread(ratios: number[]): string {
  if (ratios.length === 0) return "-";
  const sorted = [...ratios].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = Number.isInteger(middle)
    ? (sorted[middle - 1]! + sorted[middle]!) / 2
    : sorted[Math.floor(middle)]!;
  return `${sorted[0]!.toFixed(2)}-${sorted.at(-1)!.toFixed(2)} (median ${median.toFixed(2)})`;
}
