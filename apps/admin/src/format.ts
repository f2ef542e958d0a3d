/** Display helpers: UTC, so operators in different zones quote the same times. */

export function formatDateTime(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  return value.slice(0, 10);
}

export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${Math.round(value * 1000) / 10}%`;
}

/** Stripe's zero-decimal currencies: amounts are whole units, not cents. */
const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg"]);

/** A Stripe amount (minor units) in its currency: 1900 usd → "$19.00". */
export function formatMoney(amount: number, currency: string): string {
  const code = currency.toLowerCase();
  const value = ZERO_DECIMAL.has(code) ? amount : amount / 100;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: code }).format(value);
  } catch {
    return `${value} ${code.toUpperCase()}`;
  }
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

export function formatBytes(value: number): string {
  let unit = 0;
  let size = value;
  while (size >= 1024 && unit < BYTE_UNITS.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** "team_members" → "team members". */
export function humanize(value: string): string {
  return value.replace(/[_.]/g, " ");
}

/** An ISO string as the value of a `datetime-local` input (UTC wall time). */
export function toDateTimeInput(date: Date): string {
  return date.toISOString().slice(0, 16);
}

/** A `datetime-local` value, read as UTC, as an ISO string with offset. */
export function fromDateTimeInput(value: string): string {
  return new Date(`${value}:00Z`).toISOString();
}

/** A violation's usage against its limit, in bytes for storage. */
export function formatUsage(type: string, current: number, limit: number): string {
  return type === "storage"
    ? `${formatBytes(current)} / ${formatBytes(limit)}`
    : `${current} / ${limit}`;
}
