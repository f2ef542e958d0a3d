import { randomUUID } from "node:crypto";
import { ConflictError, NotFoundError } from "@zigznote/shared";
import type { BillingDeps } from "../settings";
import * as store from "./store";

/**
 * The organization's billing lease: one billing change at a time per organization (plan change,
 * cancel, checkout), across instances. Taken and released in autocommit around the Stripe calls,
 * which never run inside a transaction; the transaction that records the result checks it is
 * still held (`store.lockHeldLease`).
 */

const DEFAULT_LEASE_MS = 5 * 60 * 1000;

/**
 * Runs `fn` holding the organization's billing lease (taken and released in autocommit); 409
 * `BILLING_CHANGE_IN_PROGRESS` while another change (plan change, cancel, checkout) holds it.
 */
export async function withLease<T>(
  deps: BillingDeps,
  organizationId: string,
  fn: (leaseId: string) => Promise<T>,
): Promise<T> {
  const { db, clock } = deps;
  const leaseId = randomUUID();
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + (deps.leaseMs ?? DEFAULT_LEASE_MS));
  if (!(await store.takeLease(db, { organizationId, leaseId, now, expiresAt }))) {
    if (!(await store.isLiveOrganization(db, { organizationId }))) {
      throw new NotFoundError("Organization not found");
    }
    throw new ConflictError(
      "Another billing change of this organization is in progress; try again shortly",
      { code: "BILLING_CHANGE_IN_PROGRESS" },
    );
  }
  try {
    return await fn(leaseId);
  } finally {
    await store.releaseLease(db, { organizationId, leaseId });
  }
}
