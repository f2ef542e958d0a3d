/** Display helpers: UTC, so operators in different zones quote the same times. */

/** `2026-12-06 02:40:12 UTC`: to the second, so two events a few seconds apart differ. */
export function formatDateTime(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A span in words: `340 ms`, `1.5 s`, `2 min 5 s`, `3 h 20 min`, `4 days 2 h`. */
export function formatSpan(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)} ms`;
  if (abs < 60_000) return `${Math.round(abs / 100) / 10} s`;
  const seconds = Math.round(abs / 1000);
  if (seconds < 3600) {
    const rest = seconds % 60;
    return `${Math.floor(seconds / 60)} min${rest ? ` ${rest} s` : ""}`;
  }
  const minutes = Math.round(seconds / 60);
  if (minutes < 24 * 60) {
    const rest = minutes % 60;
    return `${Math.floor(minutes / 60)} h${rest ? ` ${rest} min` : ""}`;
  }
  const hours = Math.round(minutes / 60);
  const days = Math.floor(hours / 24);
  const rest = hours % 24;
  return `${days} day${days === 1 ? "" : "s"}${rest ? ` ${rest} h` : ""}`;
}

/** How long a run took (or has been running, as of `now`): `1.5 s`; `—` without a start. */
export function formatDuration(
  startedAt: string | null | undefined,
  finishedAt: string | null | undefined,
  now: number = Date.now(),
): string {
  if (!startedAt) return "—";
  const start = Date.parse(startedAt);
  const end = finishedAt ? Date.parse(finishedAt) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) return "—";
  return finishedAt ? formatSpan(end - start) : `running for ${formatSpan(end - start)}`;
}

/** `in 3 min` / `5 s ago`, from `now`. */
export function formatRelative(value: string | null | undefined, now: number = Date.now()): string {
  if (!value) return "";
  const at = Date.parse(value);
  if (Number.isNaN(at)) return "";
  // Whole seconds: "in 35 s", not "in 34.7 s".
  const delta = Math.round((at - now) / 1000) * 1000;
  if (delta === 0) return "now";
  return delta > 0 ? `in ${formatSpan(delta)}` : `${formatSpan(delta)} ago`;
}

/** A person as Clerk described them (the API's `AdminUser`). */
export interface PersonFields {
  email: string | null;
  name: string | null;
  username: string | null;
  clerkId: string | null;
  userId: string;
}

/**
 * How to name a person: their e-mail, else their name, else their username, else their Clerk id
 * (`isId`: shown as code); `detail` is their name when the e-mail leads.
 */
export function personLabel(person: PersonFields): {
  text: string;
  detail: string | null;
  isId: boolean;
} {
  if (person.email) return { text: person.email, detail: person.name, isId: false };
  if (person.name) return { text: person.name, detail: person.username, isId: false };
  if (person.username) return { text: person.username, detail: null, isId: false };
  return { text: person.clerkId ?? person.userId, detail: null, isId: true };
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
