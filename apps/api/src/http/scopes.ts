import type { Role } from "@zigznote/database";

/** What an API key (or a user, by role) may do. Every route a key can reach requires one. */
export const SCOPES = [
  "meetings:read",
  "meetings:write",
  "bots:read",
  "bots:write",
  "billing:read",
  "billing:write",
] as const;

export type Scope = (typeof SCOPES)[number];

const MEMBER_SCOPES: readonly Scope[] = SCOPES.filter((scope) => scope !== "billing:write");

/** A user's scopes follow from their role: changing the plan or payment is for admins only. */
export function scopesForRole(role: Role): readonly Scope[] {
  return role === "admin" ? SCOPES : MEMBER_SCOPES;
}
