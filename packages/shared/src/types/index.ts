/** Roles of a user within an organization. Clerk's `org:admin` maps to `admin`. */
export const ROLES = ["admin", "member"] as const;
export type Role = (typeof ROLES)[number];

/** Webhook providers the API accepts events from. */
export const WEBHOOK_PROVIDERS = ["stripe", "clerk", "recall"] as const;
export type WebhookProvider = (typeof WEBHOOK_PROVIDERS)[number];

/** Slugs of the seeded plans; the Plan table is the source of their limits. */
export const PLAN_SLUGS = ["free", "pro", "business"] as const;
export type PlanSlug = (typeof PLAN_SLUGS)[number];

/** A page of results with an opaque cursor for the next page (null on the last page). */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
