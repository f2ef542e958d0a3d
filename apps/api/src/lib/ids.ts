/** A UUID in its canonical text form (any version): ids that are not cannot name a row. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True when `value` could be a row id; callers answer 404 for anything else. */
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}
