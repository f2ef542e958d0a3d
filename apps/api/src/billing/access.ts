import type { Db } from "@zigznote/database";
import { ForbiddenError, NotFoundError, PaymentRequiredError } from "@zigznote/shared";
import { getUsage } from "../recordings";
import type { WriteAction } from "../http/auth";
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
 * What billing allows an organization to write. Routes that create or change data declare
 * `write: <action>` (see `defineRoute`), and the app runs `assertCanWrite` before their handler;
 * reads, the billing routes and what makes usage drop (deleting meetings or recordings, removing
 * members, revoking keys) never do, so a suspended customer can still see everything and pay.
 * It is a check before the write, not a lock: two concurrent creations at a limit may both pass,
 * and the next `checkPlanViolations` records the excess.
 */

/**
 * Throws when billing forbids `action`: 402 `SUBSCRIPTION_SUSPENDED` while the subscription is
 * suspended; 403 `PLAN_LIMIT_MEETINGS` when the month's meetings are at the limit (creating a
 * meeting) or over it (read-only: no bots either); 403 `PLAN_LIMIT_STORAGE` once a storage
 * violation's grace is over (no new meetings, bots or recordings); 403 `PLAN_LIMIT_TEAM_MEMBERS`
 * when the members are at the limit (adding one). A violation a platform admin waived, or whose
 * grace they extended, is not enforced until that date (the suspension likewise while comped).
 * One query, plus the usage aggregate when the action is limited by a count.
 */
export async function assertCanWrite(
  deps: { db: Db },
  input: { organizationId: string; action: WriteAction; now: Date },
): Promise<void> {
  const { db } = deps;
  const { organizationId, action, now } = input;
  const row = await store.findAccessRow(db, { organizationId, now });
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

  const meetingsLimit = isHeldBack("meetings") ? null : row.max_meetings_per_month;
  const membersLimit = isHeldBack("team_members") ? null : row.max_team_members;
  const needsUsage =
    ((action === "meeting.create" || action === "bot.create") && meetingsLimit !== null) ||
    (action === "member.add" && membersLimit !== null);
  if (!needsUsage) return;
  const usage = await getUsage(db, organizationId, now);

  if (meetingsLimit !== null) {
    const current = usage.meetingsThisMonth;
    // At the limit: no new meeting. Over it (after a downgrade): read-only, no bots either.
    const isRefused =
      (action === "meeting.create" && current >= meetingsLimit) ||
      (action === "bot.create" && current > meetingsLimit);
    if (isRefused) {
      throw new ForbiddenError(
        "The plan's monthly meeting limit is reached: upgrade to record more meetings",
        {
          code: PLAN_LIMIT_CODES.meetings,
          details: { limit: meetingsLimit, current, planSlug: row.plan_slug },
        },
      );
    }
  }
  if (action === "member.add" && membersLimit !== null && usage.activeMembers >= membersLimit) {
    throw new ForbiddenError(
      "The plan's team member limit is reached: upgrade or remove members first",
      {
        code: PLAN_LIMIT_CODES.team_members,
        details: { limit: membersLimit, current: usage.activeMembers, planSlug: row.plan_slug },
      },
    );
  }
}
