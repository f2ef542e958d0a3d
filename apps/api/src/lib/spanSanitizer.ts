import type { Attributes, SpanStatus } from "@opentelemetry/api";
import type { ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter, TimedEvent } from "@opentelemetry/sdk-trace";

/**
 * The last check before spans leave the process: whatever an instrumentation or an error
 * message put into a span, no e-mail address, credential or query string is exported.
 *
 * - e-mail addresses anywhere in a string (attribute values, span names, exception messages and
 *   stack traces, status messages), also percent-encoded (`ada%40example.com`, as in a path),
 *   become `[email]` (an SMTP error quotes the recipient);
 * - credentials recognisable by their shape anywhere in a string become `[redacted]`: our API
 *   keys (`zn_...`), JWTs (Clerk's session tokens), Stripe's secret and restricted keys, webhook
 *   signing secrets (`whsec_...`);
 * - URLs lose their query string, fragment and user info: in the attributes that hold one
 *   (`url.full`, `http.url`, `http.target`, ...; `url.query` is dropped) and wherever free text
 *   quotes one (an error message quoting a link): pre-signed links carry signatures, searches
 *   carry addresses;
 * - an attribute named like a credential (authorization, cookie, password, secret, token, api
 *   key) is replaced by `[redacted]`.
 * Bodies are never recorded by the instrumentations configured in `tracingSdk.ts`.
 */

// Quotes and slashes are left out of the local part: an address quoted in SQL or a message, or
// ending a path, loses only itself. The last label starts with a letter, as top-level domains
// do: `nodemailer@10.6.1` in a stack trace's path is a package, not an address.
const EMAIL = /[A-Za-z0-9.!#$%&*+=?^_{|}~-]+(?:@|%40)(?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*/g;
// Our API keys (identity/apiKeyService.ts), JWTs (a JSON header, `eyJ`, and two more
// base64url parts), Stripe's secret and restricted keys, Stripe's and Svix's signing secrets.
const CREDENTIAL =
  /\bzn_[A-Za-z0-9_]{4,}|\beyJ[\w-]+\.[\w-]+\.[\w-]*|\b[rs]k_(?:live|test)_\w+|\bwhsec_[\w+/=]+/g;
// A URL in free text: its scheme and host and path are kept, user info and query are not.
const URL_IN_TEXT = /\b([a-z][a-z0-9+.-]*:\/\/)(?:[^\s/@]*@)?([^\s?#"'<>]*)[?#]?[^\s"'<>]*/gi;
/** One scan telling whether `redactText` could change anything (most strings: nothing). */
const SUSPECT = /@|%40|:\/\/\S*[?#]|zn_|eyJ|[rs]k_(?:live|test)_|whsec_/;
const CREDENTIAL_KEY = /authorization|cookie|password|passwd|secret|token|api[-_.]?key|signature/i;
/** Attributes holding a URL or a path that may end in a query string. */
const URL_KEYS = new Set(["url.full", "http.url", "http.target", "url.path", "url.original"]);
/** Attributes that are nothing but a query string. */
const DROPPED_KEYS = new Set(["url.query"]);

/** `text` with every e-mail address (plain or percent-encoded) replaced by `[email]`. */
export function redactEmails(text: string): string {
  // Cheap test first: most strings have no "@".
  return text.includes("@") || text.includes("%40") ? text.replace(EMAIL, "[email]") : text;
}

/**
 * `text` with the rules above applied: addresses, credentials by their shape, and the user info
 * and query strings of the URLs it quotes. Also applied where a span's attribute is made from
 * something a caller sent (the request's path: `http/traceContext.ts`).
 */
export function redactText(text: string): string {
  if (!SUSPECT.test(text)) return text;
  const withoutQueries = text.includes("://") ? text.replace(URL_IN_TEXT, "$1$2") : text;
  return redactEmails(withoutQueries).replace(CREDENTIAL, "[redacted]");
}

/** A URL or path without its query string, fragment and user info. */
export function stripUrl(value: string): string {
  const cut = value.search(/[?#]/);
  const withoutQuery = cut === -1 ? value : value.slice(0, cut);
  // scheme://user:password@host/... -> scheme://host/...
  return withoutQuery.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
}

/** A value with the rules applied, nested arrays and maps included. */
function sanitizeValue(key: string, value: unknown): unknown {
  if (CREDENTIAL_KEY.test(key)) return "[redacted]";
  if (typeof value === "string") return redactText(URL_KEYS.has(key) ? stripUrl(value) : value);
  if (Array.isArray(value)) return value.map((item: unknown) => sanitizeValue("", item));
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(
      Object.entries(value).map(([name, item]) => [name, sanitizeValue(name, item)]),
    );
  }
  return value;
}

/** A copy of `attributes` with the rules above applied. */
export function sanitizeAttributes(attributes: Attributes): Attributes {
  const clean: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) {
    if (DROPPED_KEYS.has(key)) continue;
    clean[key] = sanitizeValue(key, value);
  }
  return clean;
}

function sanitizeStatus(status: SpanStatus): SpanStatus {
  return status.message === undefined
    ? status
    : { code: status.code, message: redactText(status.message) };
}

function sanitizeEvent(event: TimedEvent): TimedEvent {
  return {
    ...event,
    name: redactText(event.name),
    ...(event.attributes ? { attributes: sanitizeAttributes(event.attributes) } : {}),
  };
}

/** True when `sanitizeAttributes` would leave this attribute as it is (no allocation). */
function isAttributeClean(key: string, value: unknown): boolean {
  if (DROPPED_KEYS.has(key) || CREDENTIAL_KEY.test(key)) return false;
  if (typeof value === "string") {
    return !SUSPECT.test(value) && !(URL_KEYS.has(key) && /[?#]/.test(value));
  }
  // Arrays and maps take the full path.
  return value === undefined || typeof value === "number" || typeof value === "boolean";
}

/** True when nothing in the span needs changing: the usual span, passed on without a copy. */
function isSpanClean(span: ReadableSpan): boolean {
  if (SUSPECT.test(span.name) || SUSPECT.test(span.status.message ?? "")) return false;
  if (span.events.length > 0 || span.links.length > 0) return false;
  for (const key in span.attributes) {
    if (!isAttributeClean(key, span.attributes[key])) return false;
  }
  return true;
}

/**
 * A sanitized view of a finished span (the original is left as it is); the span itself when
 * there is nothing to change.
 */
export function sanitizeSpan(span: ReadableSpan): ReadableSpan {
  if (isSpanClean(span)) return span;
  return {
    name: redactText(span.name),
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status: sanitizeStatus(span.status),
    attributes: sanitizeAttributes(span.attributes),
    links: span.links.map((link) =>
      link.attributes ? { ...link, attributes: sanitizeAttributes(link.attributes) } : link,
    ),
    events: span.events.map(sanitizeEvent),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Wraps an exporter so that only sanitized spans reach it (off the request path, per batch). */
export class SanitizingSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans.map(sanitizeSpan), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
