import { Prisma, type Db, type Notification, type NotificationStatus } from "@zigznote/database";

/**
 * The notification outbox table: every query and conditional update of the feature, nothing
 * else. The rules (who is told, retries, when to give up) live in `outbox.ts`.
 */

export interface OutboxNotice {
  organizationId: string;
  type: string;
  payload: Record<string, unknown>;
  /** Identifies the cause; the recipient's id is appended so each admin gets one copy. */
  dedupeKey: string;
}

/** `n AS (...)`: the notices as rows (organization_id, type, payload, dedupe_key). */
function noticesAsRows(notices: OutboxNotice[]): Prisma.Sql {
  const rows = JSON.stringify(
    notices.map((notice) => ({
      organization_id: notice.organizationId,
      type: notice.type,
      payload: notice.payload,
      dedupe_key: notice.dedupeKey,
    })),
  );
  return Prisma.sql`n AS (
      SELECT * FROM jsonb_to_recordset(${rows}::jsonb)
               AS n(organization_id uuid, type text, payload jsonb, dedupe_key text)
    )`;
}

/** The recipients that are users (joined as `u`): the user's id appended to the dedupe key. */
const USER_RECIPIENTS = Prisma.sql`SELECT n.organization_id, u.id AS user_id, u.email, n.type,
             n.payload, n.dedupe_key, n.dedupe_key || ':' || u.id::text AS key, 0 AS rank
        FROM n`;

/** The outbox insert of `recipients` rows (each row a recipient of one notice). */
const INSERT_INTO_OUTBOX = Prisma.sql`INSERT INTO notification_outbox
      (organization_id, recipient_user_id, recipient_email, type, payload, dedupe_key)
    SELECT organization_id, user_id, email, type, payload, key`;

/**
 * Inserts each notice for every admin (not deleted) of its organization and for the
 * organization's billing e-mail (the Stripe customer's), in one statement, each address once
 * (an admin whose address is the billing e-mail gets one copy). The dedupe key gets the
 * recipient appended (the admin's id, or `billing`); rows whose key exists are skipped. A
 * deleted organization has nobody left to tell: its notices are not queued (the cancellation
 * of its plan, say, whose violations would otherwise be announced to its former admins).
 * Returns the number of rows inserted.
 */
export function insertAdminNotices(db: Db, notices: OutboxNotice[]): Promise<number> {
  return db.$executeRaw`
    WITH ${noticesAsRows(notices)}, recipients AS (
      ${USER_RECIPIENTS}
        JOIN organizations lo ON lo.id = n.organization_id AND lo.deleted_at IS NULL
        JOIN memberships m ON m.organization_id = n.organization_id AND m.role = 'admin'
        JOIN users u ON u.id = m.user_id AND u.deleted_at IS NULL
      UNION ALL
      SELECT n.organization_id, NULL, o.billing_email, n.type, n.payload, n.dedupe_key,
             n.dedupe_key || ':billing', 1
        FROM n JOIN organizations o ON o.id = n.organization_id
       WHERE o.billing_email IS NOT NULL AND o.deleted_at IS NULL
    )
    ${INSERT_INTO_OUTBOX}
      FROM (SELECT DISTINCT ON (dedupe_key, COALESCE(lower(email), key)) *
              FROM recipients
             ORDER BY dedupe_key, COALESCE(lower(email), key), rank) AS unique_recipients
    ON CONFLICT (dedupe_key) DO NOTHING`;
}

/**
 * The type prefix of notices for zigznote's operators (about an organization, not for it): the
 * organization's own list of notices (`GET /api/v1/notices`) leaves them out.
 */
export const OPERATOR_NOTICE_PREFIX = "ops.";

/** zigznote's operators: the users with these Clerk ids, and these addresses. */
export interface OperatorRecipients {
  clerkUserIds: readonly string[];
  emails: readonly string[];
}

/**
 * Inserts each notice for the operators (platform admins: live users with these Clerk ids and an
 * e-mail, and the listed addresses), in one statement, each address once (a user's address that
 * is also listed gets one copy). The dedupe key gets the recipient appended (the user's id, or
 * `email:<address>`); rows whose key exists are skipped. Returns the number of rows inserted.
 */
export function insertOperatorNotices(
  db: Db,
  notices: OutboxNotice[],
  recipients: OperatorRecipients,
): Promise<number> {
  return db.$executeRaw`
    WITH ${noticesAsRows(notices)}, recipients AS (
      ${USER_RECIPIENTS}
        JOIN users u ON u.clerk_id = ANY(${[...recipients.clerkUserIds]}::text[])
                    AND u.deleted_at IS NULL AND u.email IS NOT NULL
      UNION ALL
      SELECT n.organization_id, NULL, e.email, n.type, n.payload, n.dedupe_key,
             n.dedupe_key || ':email:' || lower(e.email), 1
        FROM n CROSS JOIN unnest(${[...recipients.emails]}::text[]) AS e(email)
    )
    ${INSERT_INTO_OUTBOX}
      FROM (SELECT DISTINCT ON (dedupe_key, lower(email)) *
              FROM recipients
             ORDER BY dedupe_key, lower(email), rank) AS unique_recipients
    ON CONFLICT (dedupe_key) DO NOTHING`;
}

/**
 * Claims up to `limit` pending notices, oldest first, that no one holds (SKIP LOCKED, and a
 * claim deadline past `now`) until `claimedUntil`, counting the attempt; one statement. The
 * claimed rows, oldest first.
 */
export async function claimPendingNotices(
  db: Db,
  input: { now: Date; claimedUntil: Date; limit: number },
): Promise<(Notification & { organizationName: string })[]> {
  const ids = await db.$queryRaw<{ id: string }[]>`
    UPDATE notification_outbox SET claimed_until = ${input.claimedUntil}, attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM notification_outbox
        WHERE status = 'pending' AND (claimed_until IS NULL OR claimed_until <= ${input.now})
        ORDER BY created_at
        LIMIT ${input.limit}
        FOR UPDATE SKIP LOCKED)
    RETURNING id`;
  if (ids.length === 0) return [];
  const rows = await db.notification.findMany({
    where: { id: { in: ids.map((row) => row.id) } },
    orderBy: { createdAt: "asc" },
    include: { organization: { select: { name: true } } },
  });
  return rows.map(({ organization, ...row }) => ({ ...row, organizationName: organization.name }));
}

/**
 * A deliverer's claim on one row: the attempt it counted and the deadline it set. Another
 * deliverer that claims the row after the deadline counts a new attempt and sets its own
 * deadline, so the pair says whether the claim is still this deliverer's.
 */
export interface NoticeClaim {
  id: string;
  attempts: number;
  claimedUntil: Date;
}

/**
 * Moves a claim's deadline to `until` if the row is still pending and the claim is still the
 * caller's (nobody claimed it after its deadline). Returns the renewed claim, or null when the row
 * was taken over or is no longer pending.
 */
export async function renewNoticeClaim(
  db: Db,
  input: { claim: NoticeClaim; until: Date },
): Promise<NoticeClaim | null> {
  const { claim } = input;
  const updated = await db.$executeRaw`
    UPDATE notification_outbox SET claimed_until = ${input.until}
     WHERE id = ${claim.id}::uuid AND status = 'pending'
       AND attempts = ${claim.attempts} AND claimed_until = ${claim.claimedUntil}`;
  return updated > 0 ? { ...claim, claimedUntil: input.until } : null;
}

/** Marks a pending notice sent at `at`; returns 1, or 0 when it was no longer pending. */
export function markNoticeSent(db: Db, input: { id: string; at: Date }): Promise<number> {
  return db.$executeRaw`
    UPDATE notification_outbox SET status = 'sent', sent_at = ${input.at},
           claimed_until = NULL, last_error = NULL
     WHERE id = ${input.id}::uuid AND status = 'pending'`;
}

/**
 * Records a failed send of a pending notice under the caller's claim: its error, and `failed` for
 * good when `isGivenUp`, else it stays pending and no deliverer claims it before `retryAt` (the
 * back-off). Nothing changes when another deliverer has claimed the row since (its own attempt
 * decides). Returns 1, or 0 when nothing changed.
 */
export function markNoticeFailed(
  db: Db,
  input: { claim: NoticeClaim; error: string; isGivenUp: boolean; retryAt: Date },
): Promise<number> {
  const { claim } = input;
  return db.$executeRaw`
    UPDATE notification_outbox
       SET last_error = ${input.error},
           claimed_until = CASE WHEN ${input.isGivenUp} THEN NULL ELSE ${input.retryAt}::timestamptz END,
           status = CASE WHEN ${input.isGivenUp} THEN 'failed'::"NotificationStatus" ELSE status END
     WHERE id = ${claim.id}::uuid AND status = 'pending'
       AND attempts = ${claim.attempts} AND claimed_until = ${claim.claimedUntil}`;
}

/**
 * Puts a sent, failed or skipped notice back in the queue (a platform admin's resend): pending,
 * no attempts, no claim; the deliverers pick it up. False when it was pending already.
 */
export async function requeueNotice(db: Db, input: { id: string }): Promise<boolean> {
  const updated = await db.$executeRaw`
    UPDATE notification_outbox
       SET status = 'pending', attempts = 0, last_error = NULL, claimed_until = NULL,
           sent_at = NULL
     WHERE id = ${input.id}::uuid AND status <> 'pending'`;
  return updated > 0;
}

/** Marks a pending notice skipped (its cause was undone); returns 1, or 0 if not pending. */
export function markNoticeSkipped(db: Db, input: { id: string; reason: string }): Promise<number> {
  return db.$executeRaw`
    UPDATE notification_outbox SET status = 'skipped', claimed_until = NULL,
           last_error = ${input.reason}
     WHERE id = ${input.id}::uuid AND status = 'pending'`;
}

/** An organization's notices, newest first, before a (createdAt, id) cursor. */
export function listNotices(
  db: Db,
  input: {
    organizationId: string;
    status?: NotificationStatus;
    limit: number;
    before?: { createdAt: Date; id: string };
  },
): Promise<Notification[]> {
  const { before } = input;
  return db.notification.findMany({
    where: {
      organizationId: input.organizationId,
      NOT: { type: { startsWith: OPERATOR_NOTICE_PREFIX } },
      ...(input.status ? { status: input.status } : {}),
      ...(before
        ? {
            OR: [
              { createdAt: { lt: before.createdAt } },
              { createdAt: before.createdAt, id: { lt: before.id } },
            ],
          }
        : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    take: input.limit,
  });
}
