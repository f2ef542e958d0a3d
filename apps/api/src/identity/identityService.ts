import type { Role } from "@zigznote/database";
import { NotFoundError } from "@zigznote/shared";
import type { DbDeps } from "./deps";
import * as store from "./store";
import type { IdentityRef, MembershipRef, OrganizationRef } from "./store";

export type { IdentityRef, MembershipRef, OrganizationRef } from "./store";

/**
 * Local copies of Clerk's users, organizations and memberships.
 *
 * Two writers meet here: the first authenticated request of someone we have not seen (from the
 * JWT's claims) and Clerk's webhooks. They may run in any order and at the same time, and Clerk
 * delivers events out of order, so every write is one atomic `INSERT ... ON CONFLICT` on the
 * Clerk id, and an update only applies when its `updatedAt` is not older than what the row
 * already reflects. A deletion is final: later (or late) events do not bring the row back.
 *
 * A row created with `onlyIfMissing` (first-request provisioning, or a membership event naming a
 * user we have not seen) is a placeholder: it records no Clerk `updated_at`, so the first real
 * Clerk event for it applies whatever its timestamp (a token issued after the user's last change
 * must not make the user.created event look stale).
 *
 * Every function takes `{ db }`: the app's client or the caller's transaction.
 */

interface UpsertOptions {
  /**
   * Leave an existing row as it is (first-request provisioning must not overwrite what a webhook
   * wrote) and store no Clerk timestamp.
   */
  onlyIfMissing?: boolean;
}

export interface ClerkUserInput extends store.UserFields, UpsertOptions {}

export interface ClerkOrganizationInput extends store.OrganizationFields, UpsertOptions {}

export interface MembershipInput extends store.MembershipFields, UpsertOptions {}

/** A Clerk deletion: whose, and when it happened. */
export interface ClerkDeletionInput {
  clerkId: string;
  at: Date;
}

/** Clerk's organization role to ours: `org:admin` (or legacy `admin`) is admin, anything else member. */
export function mapClerkRole(role: string | null | undefined): Role {
  return role === "org:admin" || role === "admin" ? "admin" : "member";
}

/**
 * The row after an upsert: the one the statement returned or, when it skipped the update (older
 * event, first-request data, deleted row), the row as it was.
 */
async function rowAfterUpsert<T>(
  table: string,
  upserted: Promise<T | null>,
  findExisting: () => Promise<T | null>,
): Promise<T> {
  const row = (await upserted) ?? (await findExisting());
  if (!row) throw new Error(`${table} row vanished during its upsert`);
  return row;
}

/** Creates the user or applies newer data to it. */
export function upsertUser(deps: DbDeps, input: ClerkUserInput): Promise<IdentityRef> {
  return rowAfterUpsert(
    "users",
    store.upsertUserRow(deps.db, input, input.onlyIfMissing ?? false),
    () => store.findUserRef(deps.db, input.clerkId),
  );
}

/**
 * Marks the user deleted (a tombstone if we never saw it), erases what Clerk told us about them and
 * removes their memberships. Erasing makes the outcome independent of order: a deletion that
 * arrives before the user's creation leaves the same row as one that arrives after it.
 */
export async function deleteUser(deps: DbDeps, input: ClerkDeletionInput): Promise<void> {
  await store.markUserDeleted(deps.db, input.clerkId, input.at);
  await store.deleteMembershipsOfUser(deps.db, input.clerkId);
}

/** Creates the organization (on the free plan) or applies newer data to it. */
export function upsertOrganization(
  deps: DbDeps,
  input: ClerkOrganizationInput,
): Promise<OrganizationRef> {
  return rowAfterUpsert(
    "organizations",
    store.upsertOrganizationRow(deps.db, input, input.onlyIfMissing ?? false),
    () => store.findOrganizationRef(deps.db, input.clerkId),
  );
}

/**
 * Marks the organization deleted (a tombstone if we never saw it). Its data is kept for cleanup;
 * its Clerk name is replaced, as a tombstone created before we ever saw the name would have it.
 */
export async function deleteOrganization(deps: DbDeps, input: ClerkDeletionInput): Promise<void> {
  await store.markOrganizationDeleted(deps.db, input.clerkId, input.at);
}

/** Creates the membership or applies a newer role to it. */
export function upsertMembership(deps: DbDeps, input: MembershipInput): Promise<MembershipRef> {
  return rowAfterUpsert(
    "memberships",
    store.upsertMembershipRow(deps.db, input, input.onlyIfMissing ?? false),
    () => store.findMembershipRef(deps.db, input),
  );
}

/** Removes a membership unless a newer event re-created it after `at`. Returns rows removed. */
export function deleteMembership(
  deps: DbDeps,
  input: { organizationId: string; userId: string; at: Date },
): Promise<number> {
  return store.deleteMembershipUnlessNewer(deps.db, input);
}

/** The rows behind a caller: its organization, and its user or its API key. */
export interface CallerRows extends store.CallerRows {
  organization: store.OrganizationSummary;
}

/** The rows behind a caller; NotFoundError when its organization is gone. */
export async function getCallerRows(
  deps: DbDeps,
  input: { organizationId: string; userId: string | null; apiKeyId: string | null },
): Promise<CallerRows> {
  const { organization, ...rest } = await store.findCallerRows(deps.db, input);
  if (!organization) throw new NotFoundError("Organization not found");
  return { organization, ...rest };
}
