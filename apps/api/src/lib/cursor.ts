import { ValidationError } from "@zigznote/shared";
import { isUuid } from "./ids";
import { isStorableText } from "./text";

/**
 * Opaque keyset cursors: base64url JSON of the last row's sort key and id. Decoding accepts only
 * what `encodeCursor` writes (400 INVALID_CURSOR otherwise), so no cursor reaches SQL unchecked.
 */

type Part = "time" | "timeOrNull" | "text" | "uuid";
type Value<P extends Part> = P extends "time"
  ? Date
  : P extends "timeOrNull"
    ? Date | null
    : string;

// What `Date#toISOString` writes for a four-digit year; the year must also be one PostgreSQL's
// timestamptz holds and the API can have written: 0000 (1 BC) fits the pattern but is neither.
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MIN_YEAR = 1;
const MAX_YEAR = 9999;

/** 400 INVALID_CURSOR: what every list answers for a cursor it did not issue. */
export function invalidCursor(): ValidationError {
  return new ValidationError("Invalid cursor: pass back a nextCursor exactly as received", {
    code: "INVALID_CURSOR",
    fields: [{ path: "cursor", message: "Invalid cursor", code: "invalid_cursor" }],
  });
}

/** A cursor for `kind` at these values (dates as ISO strings). */
export function encodeCursor(kind: string, values: (Date | string | null)[]): string {
  const parts = values.map((value) => (value instanceof Date ? value.toISOString() : value));
  return Buffer.from(JSON.stringify([kind, ...parts])).toString("base64url");
}

/**
 * A cursor's time as `encodeCursor` writes it: years 0001-9999, round-tripping exactly (which
 * refuses dates that parse anyway, 2026-02-30 being March 2nd); 400 INVALID_CURSOR otherwise.
 */
export function decodeCursorTime(value: unknown): Date {
  if (typeof value !== "string" || !TIME.test(value)) throw invalidCursor();
  const date = new Date(value);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== value) throw invalidCursor();
  const year = date.getUTCFullYear();
  if (year < MIN_YEAR || year > MAX_YEAR) throw invalidCursor();
  return date;
}

/** The values of a cursor of `kind` with these parts; 400 INVALID_CURSOR for anything else. */
export function decodeCursor<const P extends readonly Part[]>(
  cursor: string,
  kind: string,
  parts: P,
): { [K in keyof P]: Value<P[K]> } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalidCursor();
  }
  if (!Array.isArray(value) || value.length !== parts.length + 1 || value[0] !== kind) {
    throw invalidCursor();
  }
  return parts.map((part, index) => {
    const item: unknown = value[index + 1];
    switch (part) {
      case "time":
        return decodeCursorTime(item);
      case "timeOrNull":
        return item === null ? null : decodeCursorTime(item);
      case "uuid":
        if (typeof item !== "string" || !isUuid(item)) throw invalidCursor();
        return item;
      case "text":
        // U+0000 or a lone surrogate would fail the query (see lib/text.ts), and we never write one.
        if (typeof item !== "string" || item.length > 1000 || !isStorableText(item)) {
          throw invalidCursor();
        }
        return item;
    }
  }) as { [K in keyof P]: Value<P[K]> };
}

/**
 * A page from rows fetched with one extra (`limit + 1`): the first `limit` serialized, and the
 * cursor of the last of them when the extra row shows there is more.
 */
export function toPage<R, T>(
  rows: readonly R[],
  limit: number,
  serialize: (row: R) => T,
  cursorOf: (row: R) => string,
): { data: T[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    data: page.map(serialize),
    nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null,
  };
}
