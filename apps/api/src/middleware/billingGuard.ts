import type { RequestHandler } from "express";
import { assertCanWrite, type WriteAction } from "../billing/access";
import type { AppContext } from "../context";

/**
 * Billing's say on writes. Put `requireWriteAccess(ctx, action)` on every route that creates or
 * changes data, after `authenticate` (it reads `req.auth.organizationId`) and after the role or
 * scope check (a caller without the right gets 403 for that first), before the handler:
 *
 *   router.post("/", requireScope("meetings:write"), requireWriteAccess(ctx, "meeting.create"),
 *     validate({ body: CreateMeetingBody }), handler);
 *
 * Actions: `meeting.create` (POST meetings), `bot.create` (sending a bot), `recording.create`
 * (uploading or importing a recording), `member.add` (inviting a member through our API), and
 * `write` for any other write (updates, deletes, API keys): refused only while suspended.
 *
 * Answers (from `assertCanWrite`): 402 `SUBSCRIPTION_SUSPENDED` while the subscription is
 * suspended; 403 `PLAN_LIMIT_MEETINGS` / `PLAN_LIMIT_STORAGE` / `PLAN_LIMIT_TEAM_MEMBERS` where a
 * plan limit or a recorded violation forbids the action (details: limit, current, planSlug).
 *
 * Never put it on reads, on the billing routes (a suspended customer must be able to pay) or on
 * what makes usage drop (deleting meetings or recordings, removing members, revoking keys).
 * It is a check before the write, not a lock: two concurrent creations at a limit may both pass,
 * and the next `checkPlanViolations` records the excess.
 */
export function requireWriteAccess(ctx: AppContext, action: WriteAction): RequestHandler {
  return async (req, _res, next) => {
    await assertCanWrite(ctx.db, req.auth.organizationId, action, ctx.clock.now());
    next();
  };
}
