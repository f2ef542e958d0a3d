import { writeFileSync } from "node:fs";
import type { ReceivedSpan } from "./otlpReceiver";

/**
 * Searches exported spans for values that must never be in them. Everything a span carries is
 * searched, as received by the OTLP receiver: its name, its status message, every attribute
 * (key and value, nested values as JSON), every event (name and attributes: an exception's
 * message and stack trace) and the resource's attributes. A test lists the secrets it created
 * itself (keys, tokens, signatures, addresses, bodies), so a leak is found wherever it hides.
 */

export interface Secret {
  /** What it is, for the failure message ("the API key's plain secret"). */
  label: string;
  value: string;
}

export interface Leak {
  label: string;
  span: string;
  /** Where in the span: `name`, `status`, `attribute db.query.text`, `event exception: ...`. */
  field: string;
  /** The text around the secret. */
  excerpt: string;
}

const text = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/** Every string a span carries, with where it is. */
export function fieldsOf(span: ReceivedSpan): { field: string; text: string }[] {
  const fields = [
    { field: "name", text: span.name },
    { field: "status", text: span.status.message },
  ];
  for (const [key, value] of Object.entries(span.attributes)) {
    fields.push({ field: `attribute ${key}`, text: `${key}=${text(value)}` });
  }
  for (const event of span.events) {
    fields.push({ field: `event ${event.name}`, text: event.name });
    for (const [key, value] of Object.entries(event.attributes)) {
      fields.push({ field: `event ${event.name}: ${key}`, text: `${key}=${text(value)}` });
    }
  }
  for (const [key, value] of Object.entries(span.resource)) {
    fields.push({ field: `resource ${key}`, text: `${key}=${text(value)}` });
  }
  return fields;
}

/** Each place a secret appears in `spans` (none: the promise holds). */
export function leaksOf(spans: readonly ReceivedSpan[], secrets: readonly Secret[]): Leak[] {
  const leaks: Leak[] = [];
  for (const secret of secrets) {
    // A short value would match by accident: the tests' secrets are long and random.
    if (secret.value.length < 8) throw new Error(`"${secret.label}" is too short to search for`);
  }
  for (const span of spans) {
    for (const { field, text: value } of fieldsOf(span)) {
      for (const secret of secrets) {
        const at = value.indexOf(secret.value);
        if (at === -1) continue;
        const excerpt = value.slice(Math.max(0, at - 60), at + secret.value.length + 60);
        leaks.push({ label: secret.label, span: span.name, field, excerpt });
      }
    }
  }
  return leaks;
}

/** The leaks as lines a failing expectation shows (an empty list when there are none). */
export function describeLeaks(leaks: readonly Leak[]): string[] {
  return leaks.map(
    (leak) => `${leak.label} in span "${leak.span}", ${leak.field}: ${leak.excerpt}`,
  );
}

/**
 * With SPAN_DUMP=<file> set, writes every span received to that file (JSON): what an auditor
 * reads to see what the API exports, beyond the values a test knows to look for.
 */
export function dumpSpans(spans: readonly ReceivedSpan[]): void {
  const file = process.env.SPAN_DUMP;
  if (file) writeFileSync(file, JSON.stringify(spans, null, 1));
}

/** Expects spans (at least one) and no secret in any of them; the leaks are the failure. */
export function expectNoLeaks(spans: readonly ReceivedSpan[], secrets: readonly Secret[]): void {
  expect(spans.length).toBeGreaterThan(0);
  expect(describeLeaks(leaksOf(spans, secrets))).toEqual([]);
}
