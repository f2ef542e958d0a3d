import { Prisma, type Db } from "@zigznote/database";
import { USER_COLUMNS, type UserColumns } from "./store";

/**
 * `admin_audit_log`, the admin feature's own table: append-only, one entry per action, written
 * in the transaction of the action's change.
 */

/**
 * The admin feature's SQL: reads across organizations for the console (each page one indexed
 * query: keyset cursors, never OFFSET, never a scan of every organization) and the conditional
 * writes of its actions, plus the append-only audit log. The rules live in `reads.ts` and
 * `actions.ts`.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AuditInsert {
  actorUserId: string;
  action: string;
  targetType: string;
  targetId: string;
  organizationId: string | null;
  reason: string;
  before: unknown;
  after: unknown;
  createdAt: Date;
}

/** Appends one entry (in the caller's transaction); returns its id. */
export async function insertAuditEntry(db: Db, input: AuditInsert): Promise<string> {
  const json = (value: unknown) => (value === null ? null : JSON.stringify(value));
  const rows = await db.$queryRaw<{ id: string }[]>`
    INSERT INTO admin_audit_log
      (actor_user_id, action, target_type, target_id, organization_id, reason, before, after,
       created_at)
    VALUES (${input.actorUserId}::uuid, ${input.action}, ${input.targetType}, ${input.targetId},
            ${input.organizationId}::uuid, ${input.reason}, ${json(input.before)}::jsonb,
            ${json(input.after)}::jsonb, ${input.createdAt})
    RETURNING id`;
  return rows[0]!.id;
}

export interface AuditRow extends UserColumns {
  id: string;
  actor_user_id: string;
  organization_name: string | null;
  action: string;
  target_type: string;
  target_id: string;
  organization_id: string | null;
  reason: string;
  before: unknown;
  after: unknown;
  created_at: Date;
}

export function listAuditEntries(
  db: Db,
  input: {
    targetType?: string;
    targetId?: string;
    actorUserId?: string;
    cursor: { createdAt: Date; id: string } | null;
    limit: number;
  },
): Promise<AuditRow[]> {
  const conditions: Prisma.Sql[] = [Prisma.sql`TRUE`];
  if (input.targetType) conditions.push(Prisma.sql`a.target_type = ${input.targetType}`);
  if (input.targetId) {
    // An organization's id also finds the entries about its violations, notices, subscription.
    conditions.push(
      UUID.test(input.targetId)
        ? Prisma.sql`(a.target_id = ${input.targetId}
                      OR a.organization_id = ${input.targetId}::uuid)`
        : Prisma.sql`a.target_id = ${input.targetId}`,
    );
  }
  if (input.actorUserId) conditions.push(Prisma.sql`a.actor_user_id = ${input.actorUserId}::uuid`);
  if (input.cursor) {
    conditions.push(
      Prisma.sql`(a.created_at, a.id) < (${input.cursor.createdAt}, ${input.cursor.id}::uuid)`,
    );
  }
  return db.$queryRaw<AuditRow[]>`
    SELECT a.id, a.actor_user_id, ${USER_COLUMNS}, a.action, a.target_type, a.target_id,
           a.organization_id, o.name AS organization_name, a.reason, a.before, a.after,
           a.created_at
      FROM admin_audit_log a
      LEFT JOIN users u ON u.id = a.actor_user_id
      LEFT JOIN organizations o ON o.id = a.organization_id
     WHERE ${Prisma.join(conditions, " AND ")}
     ORDER BY a.created_at DESC, a.id DESC LIMIT ${input.limit + 1}`;
}
