import { executeStatement, queryRows, type Db, type Role } from "@zigznote/database";

/**
 * Members added through our API: the seat a new member takes is reserved while Clerk is asked,
 * so concurrent adds cannot pass the plan's seat limit; the rows of that reservation.
 */
/** The organization's Clerk id (null when it has none), or undefined for an unknown one. */
export async function findOrganizationClerkId(
  db: Db,
  organizationId: string,
): Promise<string | null | undefined> {
  const rows = await queryRows<{ clerk_id: string | null }>(
    db,
    `SELECT clerk_id FROM organizations WHERE id = $1::uuid AND deleted_at IS NULL`,
    [organizationId],
  );
  return rows.length === 0 ? undefined : rows[0]!.clerk_id;
}

/** Whether the Clerk user is a member of the organization (a user that is not deleted). */
export async function isMember(
  db: Db,
  input: { organizationId: string; clerkUserId: string },
): Promise<boolean> {
  const rows = await queryRows<{ found: number }>(
    db,
    `SELECT 1 AS found FROM memberships ms JOIN users u ON u.id = ms.user_id
      WHERE ms.organization_id = $1::uuid AND u.clerk_id = $2 AND u.deleted_at IS NULL`,
    [input.organizationId, input.clerkUserId],
  );
  return rows.length > 0;
}

/** Whether the Clerk user holds a seat reservation of the organization that has not expired. */
export async function hasLiveSeatReservation(
  db: Db,
  input: { organizationId: string; clerkUserId: string; now: Date },
): Promise<boolean> {
  const rows = await queryRows<{ found: number }>(
    db,
    `SELECT 1 AS found FROM member_reservations
      WHERE organization_id = $1::uuid AND clerk_user_id = $2 AND expires_at > $3::timestamptz`,
    [input.organizationId, input.clerkUserId, input.now],
  );
  return rows.length > 0;
}

/**
 * Reserves a seat for the Clerk user until `expiresAt` (one per organization and user: a repeat
 * takes the same seat over, with the new role and expiry). Returns the reservation's id.
 */
export async function reserveSeat(
  db: Db,
  input: { organizationId: string; clerkUserId: string; role: Role; now: Date; expiresAt: Date },
): Promise<string> {
  const rows = await queryRows<{ id: string }>(
    db,
    `INSERT INTO member_reservations (organization_id, clerk_user_id, role, expires_at, created_at)
     VALUES ($1::uuid, $2, $3::"Role", $4::timestamptz, $5::timestamptz)
     ON CONFLICT (organization_id, clerk_user_id) DO UPDATE
       SET role = EXCLUDED.role, expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at
     RETURNING id`,
    [input.organizationId, input.clerkUserId, input.role, input.expiresAt, input.now],
  );
  return rows[0]!.id;
}

/** Frees the Clerk user's seat reservation (the membership now counts, or Clerk refused). */
export async function releaseSeat(
  db: Db,
  input: { organizationId: string; clerkUserId: string },
): Promise<number> {
  return executeStatement(
    db,
    `DELETE FROM member_reservations WHERE organization_id = $1::uuid AND clerk_user_id = $2`,
    [input.organizationId, input.clerkUserId],
  );
}
