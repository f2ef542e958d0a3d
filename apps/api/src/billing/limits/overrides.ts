import * as store from "./store";
import { checkPlanViolations, type ViolationDeps } from "./violations";

/**
 * A platform admin's overrides of a recorded violation, made in the admin's transaction
 * (`deps.db`): a later grace end, or a waiver until a date. Each is a conditional update of the
 * `plan_violations` row at the version the admin saw, with the admin's event, followed by
 * billing's check in the same transaction, which brings the organization's copy (what the
 * write guard reads) and the action (grace_period while the grace runs) in step. The caller
 * holds the organization's lock (`lockOrganization`) and checked the row; false when its
 * version moved on (or it was resolved), and then nothing changed.
 */

export interface ViolationOverrideInput {
  violationId: string;
  organizationId: string;
  expectedVersion: number;
  now: Date;
  actorUserId: string;
  reason: string;
}

/** Not enforced until `graceEndsAt`. */
export function extendViolationGrace(
  deps: ViolationDeps,
  input: ViolationOverrideInput & { graceEndsAt: Date },
): Promise<boolean> {
  return overrideViolation(deps, input);
}

/** Not enforced until `waivedUntil`; still recorded and shown. */
export function waiveViolation(
  deps: ViolationDeps,
  input: ViolationOverrideInput & { waivedUntil: Date },
): Promise<boolean> {
  return overrideViolation(deps, input);
}

async function overrideViolation(
  deps: ViolationDeps,
  input: ViolationOverrideInput & ({ graceEndsAt: Date } | { waivedUntil: Date }),
): Promise<boolean> {
  const { violationId, organizationId, now, ...change } = input;
  const isUpdated = await store.overrideViolationRow(deps.db, { id: violationId, now, ...change });
  if (isUpdated) await checkPlanViolations(deps, { organizationId, now });
  return isUpdated;
}
