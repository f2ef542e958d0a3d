import type { Db } from "@zigznote/database";
import { ForbiddenError, NotFoundError, PaymentRequiredError } from "@zigznote/shared";
import type { WriteAction } from "../http/auth";
import { countActiveMembers, countMeetingsThisMonth } from "../recordings";
import * as store from "./store";
import {
  isClient,
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
 *   includes this one, and a plan change or violation check (which update or lock the same row)
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
 * until `tx` ends: the write that follows in `tx` is exactly what was decided. Lock order: a
 * write that also locks one of the organization's meetings locks the meeting first (as the
 * recording deletion and its violation re-check do).
 */
export async function guardWrite(tx: Db, input: WriteCheckInput): Promise<void> {
  if (isClient(tx)) throw new Error("guardWrite runs in the write's transaction");
  if (input.action === "write") {
    await decide(tx, await store.findAccessRow(tx, input), input);
    return;
  }
  await decide(tx, await store.lockAccessRow(tx, input), input);
}

async function decide(
  db: Db,
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
  // A platform admin's waiver, or a grace period they extended, holds the limit back until then.
  const isHeldBack = (type: ViolationType) =>
    violations.some(
      (violation) => violation.type === type && isEnforcementSuspended(violation, now),
    );
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

  if (action === "meeting.create" || action === "bot.create") {
    const limit = isHeldBack("meetings") ? null : row.max_meetings_per_month;
    if (limit === null) return;
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
    const limit = isHeldBack("team_members") ? null : row.max_team_members;
    if (limit === null) return;
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
