/**
 * Text that PostgreSQL can store.
 *
 * PostgreSQL refuses U+0000 in `text` and `jsonb` ("invalid byte sequence", "unsupported Unicode
 * escape sequence") and the driver refuses a lone surrogate (a UTF-16 half that encodes no
 * character, which UTF-8 cannot express). Every other code point is storable. A string holding
 * either fails its statement, so it must be dealt with where it enters the process:
 *
 * - what a caller typed (params, query, body) is refused: `findUnstorableText`, used once for
 *   every route by `http/validate.ts` (400 VALIDATION_ERROR naming each field);
 * - what a provider signed (webhook payloads, session-token claims, Recall's answers) is made
 *   storable with `toStorableText`: each offending unit becomes U+FFFD, the replacement
 *   character. Refusing it would not help: a provider retries a refused event for days and it
 *   can never succeed, and the change it carries (a sign-up, a bot leaving) would be lost.
 *   Replacing rather than removing keeps distinct identifiers distinct (`a\0` never becomes `a`).
 */

const NUL = "\u0000";
// A high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** The most issues one value reports: a body of a million bad strings answers with a few. */
const MAX_ISSUES = 20;

export interface UnstorableText {
  /** Where the string is: object keys and array indexes, outermost first. */
  path: (string | number)[];
  /** Whether the offending string is the key at `path` (rather than its value). */
  isKey: boolean;
  reason: "nul" | "lone_surrogate";
}

/** Whether PostgreSQL can store `value` (no U+0000, no lone surrogate). */
export function isStorableText(value: string): boolean {
  return !value.includes(NUL) && !LONE_SURROGATE.test(value);
}

function reasonOf(value: string): UnstorableText["reason"] {
  return value.includes(NUL) ? "nul" : "lone_surrogate";
}

/** Plain data as JSON or a query parser makes it: strings, arrays and plain objects. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

interface WalkNode {
  value: unknown;
  /** The key or index under which `value` sits in its parent; the parent's node. */
  step?: { key: string | number; parent: WalkNode };
  /** `value` is an object key (a string), not a value. */
  isKey: boolean;
}

function pathOf(node: WalkNode): (string | number)[] {
  const path: (string | number)[] = [];
  for (let step = node.step; step; step = step.parent.step) path.push(step.key);
  return path.reverse();
}

/**
 * Every string in `value` (object keys included) that PostgreSQL cannot store, in document
 * order, at most MAX_ISSUES. Walks strings, arrays and plain objects (anything else, a Buffer
 * say, is not text) iteratively, so a deeply nested body cannot exhaust the stack.
 */
export function findUnstorableText(value: unknown): UnstorableText[] {
  const issues: UnstorableText[] = [];
  const stack: WalkNode[] = [{ value, isKey: false }];
  while (stack.length > 0 && issues.length < MAX_ISSUES) {
    const node = stack.pop()!;
    if (typeof node.value === "string") {
      if (!isStorableText(node.value)) {
        issues.push({ path: pathOf(node), isKey: node.isKey, reason: reasonOf(node.value) });
      }
    } else if (Array.isArray(node.value)) {
      for (let index = node.value.length - 1; index >= 0; index -= 1) {
        stack.push({ value: node.value[index], step: { key: index, parent: node }, isKey: false });
      }
    } else if (isPlainObject(node.value)) {
      const entries = Object.entries(node.value);
      for (let index = entries.length - 1; index >= 0; index -= 1) {
        const [key, child] = entries[index]!;
        const step = { key, parent: node };
        stack.push({ value: child, step, isKey: false });
        stack.push({ value: key, step, isKey: true });
      }
    }
  }
  return issues;
}

/** `value` with U+0000 and lone surrogates replaced by U+FFFD. */
export function toStorableString(value: string): string {
  return isStorableText(value)
    ? value
    : value.replaceAll(NUL, "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");
}

/**
 * The first `maxLength` UTF-16 units of `value`, made storable: for an error's message recorded
 * on a row (a provider's text may quote binary, and a cut may fall inside a surrogate pair).
 */
export function storableExcerpt(value: string, maxLength: number): string {
  return toStorableString(value.slice(0, maxLength));
}

/**
 * `value` with every string (keys included) made storable; the same object when nothing needed
 * to change. For parsed JSON (strings, numbers, booleans, null, arrays, plain objects).
 */
export function toStorableText<T>(value: T): T {
  if (findUnstorableText(value).length === 0) return value;
  return JSON.parse(
    JSON.stringify(value, (_key, child: unknown) =>
      isPlainObject(child)
        ? Object.fromEntries(
            Object.entries(child).map(([key, inner]) => [toStorableString(key), inner]),
          )
        : typeof child === "string"
          ? toStorableString(child)
          : child,
    ),
  ) as T;
}

/** A path as the error body shows it: `items.0.name`, unstorable characters escaped. */
export function formatTextPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "(root)";
  return path
    .map((segment) =>
      String(segment)
        .replaceAll(NUL, "\\u0000")
        .replace(LONE_SURROGATES, (unit) => `\\u${unit.charCodeAt(0).toString(16)}`),
    )
    .join(".");
}
