import { Prisma, queryRows, type Db, type Role } from "@zigznote/database";

/**
 * The users, organizations and memberships: every query and conditional update on them, nothing
 * else (API keys: `apiKeyStore.ts`; seats reserved while Clerk is asked: `seatStore.ts`). The rules (who may do what, which Clerk data wins, how keys are
 * checked) live in `identityService.ts`, `apiKeyService.ts`, `authenticate.ts` and
 * `clerkWebhooks.ts`. Each conditional update is one statement: that is what makes it safe
 * against concurrent writers (first requests, Clerk's webhooks, other instances).
 */

/** What callers need of a local user or organization after an upsert (one statement, no re-read). */
export interface IdentityRef {
  id: string;
  deletedAt: Date | null;
}

/** An organization's ref, with its plan (what the request budget depends on). */
export interface OrganizationRef extends IdentityRef {
  planSlug: string;
}

export interface MembershipRef {
  id: string;
  role: Role;
}

/**
 * A user as Clerk describes it. A field left undefined is unknown (an update keeps the stored
 * value); null is Clerk saying there is none (an update clears it).
 */
export interface UserFields {
  clerkId: string;
  email?: string | null;
  firstName?: string | null;
  lastName?: string | null;
  username?: string | null;
  imageUrl?: string | null;
  /** Clerk's updated_at for webhook data (not stored for `onlyIfMissing` placeholders). */
  updatedAt: Date;
}

export interface OrganizationFields {
  clerkId: string;
  name: string;
  updatedAt: Date;
}

export interface MembershipFields {
  organizationId: string;
  userId: string;
  role: Role;
  clerkId?: string | null;
  updatedAt: Date;
}

/** The user or organization with this Clerk id, or null. */
export async function findUserRef(db: Db, clerkId: string): Promise<IdentityRef | null> {
  const rows = await db.$queryRaw<IdentityRef[]>`
    SELECT id, deleted_at AS "deletedAt" FROM users WHERE clerk_id = ${clerkId}`;
  return rows[0] ?? null;
}

export async function findOrganizationRef(
  db: Db,
  clerkId: string,
): Promise<OrganizationRef | null> {
  const rows = await db.$queryRaw<OrganizationRef[]>`
    SELECT id, deleted_at AS "deletedAt", plan_slug AS "planSlug"
      FROM organizations WHERE clerk_id = ${clerkId}`;
  return rows[0] ?? null;
}

/**
 * The user upsert as one statement that only acts when `guard` holds (for webhook statement
 * handlers, "this delivery claimed the event"). With `onlyIfMissing` an existing row is left as
 * it is and no Clerk timestamp is stored, so any real Clerk event fills the row in later.
 */
export function userUpsertStatement(
  input: UserFields,
  onlyIfMissing: boolean,
  guard: Prisma.Sql,
): Prisma.Sql {
  // Newer Clerk data replaces what is stored, nulls included (a name removed in Clerk is removed
  // here); a field the caller does not know keeps its value.
  const assign = (column: string, value: unknown) =>
    Prisma.raw(
      value === undefined ? `${column} = users.${column}` : `${column} = EXCLUDED.${column}`,
    );
  return Prisma.sql`
    INSERT INTO users (clerk_id, email, first_name, last_name, username, image_url,
                       clerk_updated_at)
    SELECT ${input.clerkId}::text, ${input.email ?? null}::text, ${input.firstName ?? null}::text,
           ${input.lastName ?? null}::text, ${input.username ?? null}::text,
           ${input.imageUrl ?? null}::text, ${onlyIfMissing ? null : input.updatedAt}::timestamptz
     WHERE ${guard}
    ON CONFLICT (clerk_id) DO UPDATE SET
      ${assign("email", input.email)},
      ${assign("first_name", input.firstName)},
      ${assign("last_name", input.lastName)},
      ${assign("username", input.username)},
      ${assign("image_url", input.imageUrl)},
      clerk_updated_at = EXCLUDED.clerk_updated_at,
      updated_at = now()
    WHERE NOT ${onlyIfMissing}
      AND users.deleted_at IS NULL
      AND (users.clerk_updated_at IS NULL OR users.clerk_updated_at <= EXCLUDED.clerk_updated_at)`;
}

/** Inserts the user or applies newer data; null when the update was skipped (row unchanged). */
export async function upsertUserRow(
  db: Db,
  input: UserFields,
  onlyIfMissing: boolean,
): Promise<IdentityRef | null> {
  const rows = await db.$queryRaw<IdentityRef[]>`
    ${userUpsertStatement(input, onlyIfMissing, Prisma.sql`TRUE`)}
    RETURNING id, deleted_at AS "deletedAt"`;
  return rows[0] ?? null;
}

/**
 * Marks the user deleted (a tombstone if we never saw it) and erases what Clerk told us about
 * them, keeping the newest Clerk timestamp.
 */
export async function markUserDeleted(db: Db, clerkId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    INSERT INTO users (clerk_id, deleted_at, clerk_updated_at) VALUES (${clerkId}, ${at}, ${at})
    ON CONFLICT (clerk_id) DO UPDATE SET deleted_at = COALESCE(users.deleted_at, EXCLUDED.deleted_at),
      email = NULL, first_name = NULL, last_name = NULL, username = NULL, image_url = NULL,
      clerk_updated_at = GREATEST(users.clerk_updated_at, EXCLUDED.clerk_updated_at),
      updated_at = now()`;
}

export async function deleteMembershipsOfUser(db: Db, userClerkId: string): Promise<void> {
  await db.$executeRaw`
    DELETE FROM memberships WHERE user_id = (SELECT id FROM users WHERE clerk_id = ${userClerkId})`;
}

/**
 * Locks, in id order, the organizations the user is a member of (so that concurrent handlers
 * locking several of them cannot deadlock); their ids.
 */
export async function lockOrganizationsOfUser(db: Db, userClerkId: string): Promise<string[]> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT o.id FROM organizations o
     WHERE o.id IN (SELECT m.organization_id FROM memberships m JOIN users u ON u.id = m.user_id
                     WHERE u.clerk_id = ${userClerkId})
     ORDER BY o.id
       FOR UPDATE OF o`;
  return rows.map((row) => row.id);
}

/** Inserts the organization (on the free plan) or applies newer data; null when skipped. */
export async function upsertOrganizationRow(
  db: Db,
  input: OrganizationFields,
  onlyIfMissing: boolean,
): Promise<OrganizationRef | null> {
  const rows = await db.$queryRaw<OrganizationRef[]>`
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
    RETURNING id, deleted_at AS "deletedAt", plan_slug AS "planSlug"`;
  return rows[0] ?? null;
}

/**
 * Marks the organization deleted (a tombstone if we never saw it) and replaces its Clerk name,
 * as a tombstone created before we ever saw the name would have it.
 */
export async function markOrganizationDeleted(db: Db, clerkId: string, at: Date): Promise<void> {
  await db.$executeRaw`
    INSERT INTO organizations (clerk_id, name, status, deleted_at, clerk_updated_at)
    VALUES (${clerkId}, 'Deleted organization', 'deleted', ${at}, ${at})
    ON CONFLICT (clerk_id) DO UPDATE SET status = 'deleted', name = EXCLUDED.name,
      deleted_at = COALESCE(organizations.deleted_at, EXCLUDED.deleted_at),
      clerk_updated_at = GREATEST(organizations.clerk_updated_at, EXCLUDED.clerk_updated_at),
      updated_at = now()`;
}

/** Locks the organization with this Clerk id; its id, or null when there is none. */
export async function lockOrganizationByClerkId(db: Db, clerkId: string): Promise<string | null> {
  const rows = await db.$queryRaw<{ id: string }[]>`
    SELECT id FROM organizations WHERE clerk_id = ${clerkId} FOR UPDATE`;
  return rows[0]?.id ?? null;
}

/** Inserts the membership or applies a newer role; null when the update was skipped. */
export async function upsertMembershipRow(
  db: Db,
  input: MembershipFields,
  onlyIfMissing: boolean,
): Promise<MembershipRef | null> {
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
  return rows[0] ?? null;
}

export async function findMembershipRef(
  db: Db,
  pair: { organizationId: string; userId: string },
): Promise<MembershipRef | null> {
  const rows = await db.$queryRaw<MembershipRef[]>`
    SELECT id, role FROM memberships
     WHERE organization_id = ${pair.organizationId}::uuid AND user_id = ${pair.userId}::uuid`;
  return rows[0] ?? null;
}

/** Removes the membership unless a newer event re-created it after `at`; the rows removed. */
export function deleteMembershipUnlessNewer(
  db: Db,
  input: { organizationId: string; userId: string; at: Date },
): Promise<number> {
  return db.$executeRaw`
    DELETE FROM memberships
    WHERE organization_id = ${input.organizationId}::uuid AND user_id = ${input.userId}::uuid
      AND (clerk_updated_at IS NULL OR clerk_updated_at <= ${input.at})`;
}

export async function deleteMembershipsByClerkId(db: Db, clerkId: string): Promise<void> {
  await db.membership.deleteMany({ where: { clerkId } });
}

/** A session's membership with the state of both its rows. */
export interface SessionMembership {
  userId: string;
  organizationId: string;
  userDeletedAt: Date | null;
  organizationDeletedAt: Date | null;
  /** The organization's plan: its request budget (read here, so it costs no query of its own). */
  planSlug: string;
  /** The local copy of the role, and Clerk's updated_at of the event that set it (null: none). */
  role: Role;
  clerkUpdatedAt: Date | null;
}

/** The membership of a session's user in its organization, by their Clerk ids, or null. */
export async function findMembershipByClerkIds(
  db: Db,
  input: { userClerkId: string; organizationClerkId: string },
): Promise<SessionMembership | null> {
  const row = await db.membership.findFirst({
    where: {
      user: { clerkId: input.userClerkId },
      organization: { clerkId: input.organizationClerkId },
    },
    select: {
      userId: true,
      organizationId: true,
      role: true,
      clerkUpdatedAt: true,
      user: { select: { deletedAt: true } },
      organization: { select: { deletedAt: true, planSlug: true } },
    },
  });
  if (!row) return null;
  return {
    userId: row.userId,
    organizationId: row.organizationId,
    userDeletedAt: row.user.deletedAt,
    organizationDeletedAt: row.organization.deletedAt,
    planSlug: row.organization.planSlug,
    role: row.role,
    clerkUpdatedAt: row.clerkUpdatedAt,
  };
}

/**
 * Serializes every event of one Clerk membership (created/updated vs deleted) until the
 * transaction ends.
 */
export async function lockClerkMembership(db: Db, clerkMembershipId: string): Promise<void> {
  await db.$executeRaw`
    SELECT pg_advisory_xact_lock(hashtextextended(${`clerk-membership:${clerkMembershipId}`}, 0))`;
}

/** Whether a deletion of this Clerk membership was recorded (Clerk never reuses its ids). */
export async function isMembershipDeleted(db: Db, clerkMembershipId: string): Promise<boolean> {
  const tombstone = await db.deletedMembership.findUnique({
    where: { clerkId: clerkMembershipId },
  });
  return tombstone !== null;
}

/** Records the membership's deletion, with whose membership it was (Clerk ids). */
export async function insertMembershipTombstone(
  db: Db,
  tombstone: {
    clerkMembershipId: string;
    organizationClerkId: string;
    userClerkId: string;
    at: Date;
  },
): Promise<void> {
  await db.$executeRaw`
    INSERT INTO deleted_memberships (clerk_id, deleted_at, organization_clerk_id, user_clerk_id)
    VALUES (${tombstone.clerkMembershipId}, ${tombstone.at}, ${tombstone.organizationClerkId},
            ${tombstone.userClerkId})
    ON CONFLICT (clerk_id) DO NOTHING`;
}

/** Whether Clerk removed the user from the organization at or after `since` (a tombstone). */
export async function wasMembershipRemovedSince(
  db: Db,
  input: { userClerkId: string; organizationClerkId: string; since: Date },
): Promise<boolean> {
  const rows = await queryRows<{ found: number }>(
    db,
    `SELECT 1 AS found FROM deleted_memberships
      WHERE user_clerk_id = $1 AND organization_clerk_id = $2 AND deleted_at >= $3::timestamptz
      LIMIT 1`,
    [input.userClerkId, input.organizationClerkId, input.since],
  );
  return rows.length > 0;
}

/** Share-locks the organization: a membership deletion (which locks it for update) is then
 * committed and visible to the next statement, or waits for this transaction. */
export async function lockOrganizationShared(db: Db, organizationId: string): Promise<void> {
  await queryRows(db, `SELECT 1 FROM organizations WHERE id = $1::uuid FOR SHARE`, [
    organizationId,
  ]);
}

export interface OrganizationSummary {
  id: string;
  name: string;
  clerkId: string | null;
}

export interface UserSummary {
  id: string;
  clerkId: string;
  email: string | null;
}

export interface ApiKeySummary {
  id: string;
  name: string;
  prefix: string;
}

/** What `/me` shows of a caller: its organization, and its user or its API key. */
export interface CallerRows {
  organization: OrganizationSummary | null;
  user: UserSummary | null;
  apiKey: ApiKeySummary | null;
}

/** One statement (plain SQL: it runs on every `/me`); the user and key only when asked for. */
export async function findCallerRows(
  db: Db,
  ids: { organizationId: string; userId: string | null; apiKeyId: string | null },
): Promise<CallerRows> {
  const rows = await queryRows<{
    id: string;
    name: string;
    clerkId: string | null;
    userId: string | null;
    userClerkId: string | null;
    userEmail: string | null;
    keyId: string | null;
    keyName: string | null;
    keyPrefix: string | null;
  }>(
    db,
    `SELECT o.id, o.name, o.clerk_id AS "clerkId",
            u.id AS "userId", u.clerk_id AS "userClerkId", u.email AS "userEmail",
            k.id AS "keyId", k.name AS "keyName", k.prefix AS "keyPrefix"
       FROM organizations o
       LEFT JOIN users u ON u.id = $2::uuid
       LEFT JOIN api_keys k ON k.id = $3::uuid
      WHERE o.id = $1::uuid`,
    [ids.organizationId, ids.userId, ids.apiKeyId],
  );
  const row = rows[0];
  if (!row) return { organization: null, user: null, apiKey: null };
  return {
    organization: { id: row.id, name: row.name, clerkId: row.clerkId },
    user:
      row.userId === null
        ? null
        : { id: row.userId, clerkId: row.userClerkId!, email: row.userEmail },
    apiKey:
      row.keyId === null ? null : { id: row.keyId, name: row.keyName!, prefix: row.keyPrefix! },
  };
}

/** An organization as the operators' tools name it. */
export interface NamedOrganization {
  id: string;
  name: string;
  clerkId: string | null;
  deletedAt: Date | null;
}

/**
 * The organizations an operator's `--org` can name: by id (a UUID), by Clerk id, or by exact
 * name (several organizations may share one).
 */
export function findOrganizationsNamed(
  db: Db,
  by: { id: string } | { clerkId: string } | { name: string },
): Promise<NamedOrganization[]> {
  const where =
    "id" in by
      ? Prisma.sql`id = ${by.id}::uuid`
      : "clerkId" in by
        ? Prisma.sql`clerk_id = ${by.clerkId}`
        : Prisma.sql`name = ${by.name} AND deleted_at IS NULL`;
  return db.$queryRaw<NamedOrganization[]>`
    SELECT id, name, clerk_id AS "clerkId", deleted_at AS "deletedAt"
      FROM organizations WHERE ${where} ORDER BY created_at, id LIMIT 10`;
}

/** Serializes the operators' tools creating an organization of this name or Clerk id. */
export async function lockOrganizationName(db: Db, key: string): Promise<void> {
  await db.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`bootstrap-organization:${key}`}, 0))`;
}

/** A new organization on the free plan (the Clerk id links it when Clerk's events arrive). */
export async function insertOrganization(
  db: Db,
  row: { name: string; clerkId: string | null },
): Promise<NamedOrganization> {
  const rows = await db.$queryRaw<NamedOrganization[]>`
    INSERT INTO organizations (name, clerk_id) VALUES (${row.name}, ${row.clerkId})
    RETURNING id, name, clerk_id AS "clerkId", deleted_at AS "deletedAt"`;
  return rows[0]!;
}
