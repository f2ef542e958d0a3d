import { Prisma, type Db, type Role } from "@zigznote/database";

/** What callers need of a local user or organization after an upsert (one statement, no re-read). */
export interface IdentityRef {
  id: string;
  deletedAt: Date | null;
}

export interface MembershipRef {
  id: string;
  role: Role;
}

async function findRef(
  db: Db,
  table: "users" | "organizations",
  clerkId: string,
): Promise<IdentityRef> {
  const rows =
    table === "users"
      ? await db.$queryRaw<
          IdentityRef[]
        >`SELECT id, deleted_at AS "deletedAt" FROM users WHERE clerk_id = ${clerkId}`
      : await db.$queryRaw<
          IdentityRef[]
        >`SELECT id, deleted_at AS "deletedAt" FROM organizations WHERE clerk_id = ${clerkId}`;
  if (!rows[0]) throw new Error(`${table} row vanished during its upsert`);
  return rows[0];
}

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
 */

export interface ClerkUserInput {
  clerkId: string;
  email?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  imageUrl?: string | null;
  /** Clerk's updated_at for webhook data (not stored for `onlyIfMissing` placeholders). */
  updatedAt: Date;
}

export interface ClerkOrganizationInput {
  clerkId: string;
  name: string;
  updatedAt: Date;
}

export interface MembershipInput {
  organizationId: string;
  userId: string;
  role: Role;
  clerkId?: string | null;
  updatedAt: Date;
}

/** Clerk's organization role to ours: `org:admin` (or legacy `admin`) is admin, anything else member. */
export function mapClerkRole(role: string | null | undefined): Role {
  return role === "org:admin" || role === "admin" ? "admin" : "member";
}

/**
 * Creates the user or applies newer data to it. With `onlyIfMissing`, an existing row is left as
 * it is (first-request provisioning must not overwrite what a webhook wrote).
 */
export async function upsertUser(
  db: Db,
  input: ClerkUserInput,
  onlyIfMissing = false,
): Promise<IdentityRef> {
  const rows = await db.$queryRaw<IdentityRef[]>`
    ${userUpsertStatement(input, onlyIfMissing, Prisma.sql`TRUE`)}
    RETURNING id, deleted_at AS "deletedAt"`;
  // The update was skipped (older event, first-request data, deleted): the row is as it was.
  return rows[0] ?? (await findRef(db, "users", input.clerkId));
}

/**
 * The user upsert as one statement that only acts when `guard` holds (for webhook statement
 * handlers, "this delivery claimed the event"). With `onlyIfMissing` no Clerk timestamp is
 * stored, so any real Clerk event fills the row in later.
 */
export function userUpsertStatement(
  input: ClerkUserInput,
  onlyIfMissing: boolean,
  guard: Prisma.Sql,
): Prisma.Sql {
  return Prisma.sql`
    INSERT INTO users (clerk_id, email, first_name, last_name, image_url, clerk_updated_at)
    SELECT ${input.clerkId}::text, ${input.email ?? null}::text, ${input.firstName ?? null}::text,
           ${input.lastName ?? null}::text, ${input.imageUrl ?? null}::text,
           ${onlyIfMissing ? null : input.updatedAt}::timestamptz
     WHERE ${guard}
    ON CONFLICT (clerk_id) DO UPDATE SET
      email = COALESCE(EXCLUDED.email, users.email),
      first_name = COALESCE(EXCLUDED.first_name, users.first_name),
      last_name = COALESCE(EXCLUDED.last_name, users.last_name),
      image_url = COALESCE(EXCLUDED.image_url, users.image_url),
      clerk_updated_at = EXCLUDED.clerk_updated_at,
      updated_at = now()
    WHERE NOT ${onlyIfMissing}
      AND users.deleted_at IS NULL
      AND (users.clerk_updated_at IS NULL OR users.clerk_updated_at <= EXCLUDED.clerk_updated_at)`;
}

/**
 * Marks the user deleted (a tombstone if we never saw it), erases what Clerk told us about them and
 * removes their memberships. Erasing makes the outcome independent of order: a deletion that
 * arrives before the user's creation leaves the same row as one that arrives after it.
 */
export async function deleteUser(db: Db, clerkId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    INSERT INTO users (clerk_id, deleted_at, clerk_updated_at) VALUES (${clerkId}, ${at}, ${at})
    ON CONFLICT (clerk_id) DO UPDATE SET deleted_at = COALESCE(users.deleted_at, EXCLUDED.deleted_at),
      email = NULL, first_name = NULL, last_name = NULL, image_url = NULL,
      clerk_updated_at = GREATEST(users.clerk_updated_at, EXCLUDED.clerk_updated_at),
      updated_at = now()`;
  await db.$executeRaw`
    DELETE FROM memberships WHERE user_id = (SELECT id FROM users WHERE clerk_id = ${clerkId})`;
}

/** Creates the organization (on the free plan) or applies newer data to it. */
export async function upsertOrganization(
  db: Db,
  input: ClerkOrganizationInput,
  onlyIfMissing = false,
): Promise<IdentityRef> {
  const rows = await db.$queryRaw<IdentityRef[]>`
    INSERT INTO organizations (clerk_id, name, clerk_updated_at)
    VALUES (${input.clerkId}, ${input.name}, ${onlyIfMissing ? null : input.updatedAt}::timestamptz)
    ON CONFLICT (clerk_id) DO UPDATE SET
      name = EXCLUDED.name,
      clerk_updated_at = EXCLUDED.clerk_updated_at,
      updated_at = now()
    WHERE NOT ${onlyIfMissing}
      AND organizations.deleted_at IS NULL
      AND (organizations.clerk_updated_at IS NULL
           OR organizations.clerk_updated_at <= EXCLUDED.clerk_updated_at)
    RETURNING id, deleted_at AS "deletedAt"`;
  return rows[0] ?? (await findRef(db, "organizations", input.clerkId));
}

/**
 * Marks the organization deleted (a tombstone if we never saw it). Its data is kept for cleanup;
 * its Clerk name is replaced, as a tombstone created before we ever saw the name would have it.
 */
export async function deleteOrganization(db: Db, clerkId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    INSERT INTO organizations (clerk_id, name, status, deleted_at, clerk_updated_at)
    VALUES (${clerkId}, 'Deleted organization', 'deleted', ${at}, ${at})
    ON CONFLICT (clerk_id) DO UPDATE SET status = 'deleted', name = EXCLUDED.name,
      deleted_at = COALESCE(organizations.deleted_at, EXCLUDED.deleted_at),
      clerk_updated_at = GREATEST(organizations.clerk_updated_at, EXCLUDED.clerk_updated_at),
      updated_at = now()`;
}

/** Creates the membership or applies a newer role to it. */
export async function upsertMembership(
  db: Db,
  input: MembershipInput,
  onlyIfMissing = false,
): Promise<MembershipRef> {
  const rows = await db.$queryRaw<MembershipRef[]>`
    INSERT INTO memberships (organization_id, user_id, role, clerk_id, clerk_updated_at)
    VALUES (${input.organizationId}::uuid, ${input.userId}::uuid, ${input.role}::"Role",
            ${input.clerkId ?? null}, ${onlyIfMissing ? null : input.updatedAt}::timestamptz)
    ON CONFLICT (organization_id, user_id) DO UPDATE SET
      role = EXCLUDED.role,
      clerk_id = COALESCE(EXCLUDED.clerk_id, memberships.clerk_id),
      clerk_updated_at = EXCLUDED.clerk_updated_at,
      updated_at = now()
    WHERE NOT ${onlyIfMissing}
      AND (memberships.clerk_updated_at IS NULL
           OR memberships.clerk_updated_at <= EXCLUDED.clerk_updated_at)
    RETURNING id, role`;
  if (rows[0]) return rows[0];
  const existing = await db.$queryRaw<MembershipRef[]>`
    SELECT id, role FROM memberships
     WHERE organization_id = ${input.organizationId}::uuid AND user_id = ${input.userId}::uuid`;
  if (!existing[0]) throw new Error("membership vanished during its upsert");
  return existing[0];
}

/** Removes a membership unless a newer event re-created it after `at`. Returns rows removed. */
export async function deleteMembership(
  db: Db,
  organizationId: string,
  userId: string,
  at: Date,
): Promise<number> {
  return db.$executeRaw`
    DELETE FROM memberships
    WHERE organization_id = ${organizationId}::uuid AND user_id = ${userId}::uuid
      AND (clerk_updated_at IS NULL OR clerk_updated_at <= ${at})`;
}
