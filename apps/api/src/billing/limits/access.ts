import type { Db, SqlDb } from "@zigznote/database";
import {
  ForbiddenError,
  NotFoundError,
  PaymentRequiredError,
  type ErrorCode,
} from "@zigznote/shared";
import type { RouteGuard, WriteAction, WriteGuards } from "../../http/auth";
import { countActiveMembers, countMeetingsThisMonth } from "../../recordings";
import * as store from "./store";
import {
  isEnforcementSuspended,
  isStorageGraceOver,
  isWaived,
  parseViolations,
  PLAN_LIMIT_CODES,
  type ViolationType,
} from "./violations";

/**
 * What billing allows an organization to write. Two entry points, one set of rules:
 *
 * - `guardWrite(tx, ...)` decides in the write's own transaction, under the organization's row
 *   lock (`store.lockAccessRow`), held until the write commits: the count the next create reads
 *   includes this one, and a plan change or violation check (which lock the same row FOR UPDATE)
 *   is ordered before or after the write, never between the decision and the commit. That is
 *   what makes a limit exact across instances: at most `limit` creates pass, whatever the
 *   concurrency.
 * - `assertCanWrite({ db }, ...)` is the same decision without a lock, before a write (the
 *   route's `write:` declaration): the early answer for routes whose write comes after slow work
 *   (a recording's bytes, a Recall call), and the only check for writes that no limit counts.
 *
 * A decision reads one row and, when a limit applies, counts at most `limit + 1` rows of what it
 * limits (an index range): its cost does not grow with the organization. See BILLING.md.
 */

declare module "../../http/auth" {
  /**
   * Billing registers the write actions it decides: `meeting.create`, `bot.create`,
   * `recording.create`, `member.add`, and `write` for any other write (refused only while
   * suspended).
   */
  interface WriteActions {
    "meeting.create": true;
    "bot.create": true;
    "recording.create": true;
    "member.add": true;
    write: true;
  }
}

/**
 * What the guard can answer for each action (PAYMENT_DISPUTED only where DISPUTE_READ_ONLY is
 * on: `disputes.ts`), besides NOT_FOUND when the organization vanished after authentication.
 */
const WRITE_GUARD_CODES: Record<WriteAction, readonly ErrorCode[]> = {
  "meeting.create": [
    "SUBSCRIPTION_SUSPENDED",
    "PAYMENT_DISPUTED",
    "PLAN_LIMIT_MEETINGS",
    "PLAN_LIMIT_STORAGE",
  ],
  "bot.create": [
    "SUBSCRIPTION_SUSPENDED",
    "PAYMENT_DISPUTED",
    "PLAN_LIMIT_MEETINGS",
    "PLAN_LIMIT_STORAGE",
  ],
  "recording.create": ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED", "PLAN_LIMIT_STORAGE"],
  "member.add": ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED", "PLAN_LIMIT_TEAM_MEMBERS"],
  write: ["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED"],
};

/**
 * Actions decided only in the write's transaction (`guardWrite`): their routes skip the early
 * check, which would cost a query and decide nothing the transaction does not decide again. The
 * others keep it: their write comes after slow work (a recording's bytes, a Recall call) that a
 * refusal should spare.
 */
const TRANSACTION_ONLY_WRITE_ACTIONS: ReadonlySet<WriteAction> = new Set<WriteAction>([
  "meeting.create",
  "member.add",
]);

/**
 * Billing's guards as the route kernel takes them (a route's `write:`), each with the codes it
 * answers: `check` is the early decision (`assertCanWrite` as the composition root binds it),
 * left out for the actions decided in the write's own transaction.
 */
export function createWriteGuards(
  check: (organizationId: string, action: WriteAction) => Promise<void>,
): WriteGuards {
  const guardOf = (action: WriteAction): RouteGuard => {
    const listed = WRITE_GUARD_CODES[action].map((code) => `\`${code}\``).join(", ");
    const isDecidedInTransaction = TRANSACTION_ONLY_WRITE_ACTIONS.has(action);
    return {
      codes: [...WRITE_GUARD_CODES[action], "NOT_FOUND"],
      refusals: WRITE_GUARD_CODES[action],
      note: isDecidedInTransaction
        ? `Billing decides in the write's own transaction (\`${action}\`), so the plan's ` +
          `limit holds exactly under concurrent requests: ${listed}.`
        : `Billing checks the write first (\`${action}\`): ${listed}.`,
      ...(isDecidedInTransaction
        ? {}
        : { check: (organizationId: string) => check(organizationId, action) }),
    };
  };
  return {
    "meeting.create": guardOf("meeting.create"),
    "bot.create": guardOf("bot.create"),
    "recording.create": guardOf("recording.create"),
    "member.add": guardOf("member.add"),
    write: guardOf("write"),
  };
}

export interface WriteCheckInput {
  organizationId: string;
  action: WriteAction;
  now: Date;
}

/**
 * Throws when billing forbids `action`: 402 `SUBSCRIPTION_SUSPENDED` while the subscription is
 * suspended; 403 `PLAN_LIMIT_MEETINGS` when the month's meetings are at the limit (creating a
 * meeting) or over it (read-only: no bots either); 403 `PLAN_LIMIT_STORAGE` once a storage
 * violation's grace is over (no new meetings, bots or recordings); 403 `PLAN_LIMIT_TEAM_MEMBERS`
 * when the members are at the limit (adding one). A violation a platform admin waived, or whose
 * grace they extended, is not enforced until that date (the suspension likewise while comped).
 * No lock: an early answer, not a reservation (see `guardWrite`).
 */
export async function assertCanWrite(deps: { db: Db }, input: WriteCheckInput): Promise<void> {
  const row = await store.findAccessRow(deps.db, input);
  await decide(deps.db, row, input);
}

/**
 * `assertCanWrite` inside the write's transaction `tx`, under the organization's row lock held
 * until `tx` ends (`store.lockAccessRow`): the write that follows in `tx` is exactly what was
 * decided. Lock order: a write that also locks one of the organization's meetings locks the
 * meeting first (as a recording's deletion and its violation re-check do), and nothing in `tx`
 * writes a row referencing the organization before the guard (that takes FOR KEY SHARE on it,
 * and the guard's lock after it would be an upgrade, which can deadlock: BILLING.md).
 */
export async function guardWrite(tx: SqlDb, input: WriteCheckInput): Promise<void> {
  if ("$transaction" in tx) throw new Error("guardWrite runs in the write's transaction");
  const row =
    input.action === "write"
      ? await store.findAccessRow(tx, input)
      : await store.lockAccessRow(tx, input);
  await decide(tx, row, input);
}

/**
 * The limit `action` is counted against under `row`'s plan (meetings for a meeting or a bot,
 * members for a member), or null: no such limit, or a platform admin's waiver or extended grace
 * holds it back until later.
 */
function countedLimit(
  row: store.AccessRow,
  { action, now }: Pick<WriteCheckInput, "action" | "now">,
): number | null {
  const type: ViolationType | null =
    action === "meeting.create" || action === "bot.create"
      ? "meetings"
      : action === "member.add"
        ? "team_members"
        : null;
  if (type === null) return null;
  const isHeldBack = parseViolations(row.plan_violations).some(
    (violation) => violation.type === type && isEnforcementSuspended(violation, now),
  );
  if (isHeldBack) return null;
  return type === "meetings" ? row.max_meetings_per_month : row.max_team_members;
}

async function decide(
  db: SqlDb,
  row: store.AccessRow | null,
  { organizationId, action, now }: WriteCheckInput,
): Promise<void> {
  if (!row) throw new NotFoundError("Organization not found");
  if (row.is_suspended) {
    throw new PaymentRequiredError(
      "The subscription is suspended for non-payment: pay the open invoice to write again",
      { code: "SUBSCRIPTION_SUSPENDED", details: { planSlug: row.plan_slug } },
    );
  }
  if (action === "write") return;

  const violations = parseViolations(row.plan_violations);
  const storage = violations.find((violation) => violation.type === "storage");
  if (
    storage &&
    isStorageGraceOver(storage, now) &&
    !isWaived(storage, now) &&
    (action === "meeting.create" || action === "bot.create" || action === "recording.create")
  ) {
    throw new ForbiddenError(
      "Storage is over the plan's limit and its grace period is over: delete recordings or upgrade",
      {
        code: PLAN_LIMIT_CODES.storage,
        details: { limit: storage.limit, current: storage.current, planSlug: row.plan_slug },
      },
    );
  }

  const limit = countedLimit(row, { action, now });
  if (limit === null) return;
  if (action === "meeting.create" || action === "bot.create") {
    // limit + 1 rows tell "under", "at" and "over" apart: all a decision needs.
    const counted = await countMeetingsThisMonth(db, { organizationId, now, atMost: limit + 1 });
    // At the limit: no new meeting. Over it (after a downgrade): read-only, no bots either.
    const isRefused = action === "meeting.create" ? counted >= limit : counted > limit;
    if (!isRefused) return;
    throw new ForbiddenError(
      "The plan's monthly meeting limit is reached: upgrade to record more meetings",
      {
        code: PLAN_LIMIT_CODES.meetings,
        details: {
          limit,
          current: await exactly(counted, limit, () =>
            countMeetingsThisMonth(db, { organizationId, now }),
          ),
          planSlug: row.plan_slug,
        },
      },
    );
  }

  if (action === "member.add") {
    const counted = await countActiveMembers(db, { organizationId, now, atMost: limit + 1 });
    if (counted < limit) return;
    throw new ForbiddenError(
      "The plan's team member limit is reached: upgrade or remove members first",
      {
        code: PLAN_LIMIT_CODES.team_members,
        details: {
          limit,
          current: await exactly(counted, limit, () =>
            countActiveMembers(db, { organizationId, now }),
          ),
          planSlug: row.plan_slug,
        },
      },
    );
  }
}

/**
 * The refusal's `current`: the bounded count when it is below `limit + 1` (then it is the whole
 * count), else the full count. Only an organization already over its limit (after a downgrade)
 * pays for the full count, and only when refused, so that the answer tells the truth.
 */
async function exactly(counted: number, limit: number, countAll: () => Promise<number>) {
  return counted <= limit ? counted : countAll();
}
