import { ConflictError } from "@zigznote/shared";
import { createCustomer, idempotencyKey, type StripeClient } from "../stripe/provider";
import type { BillingDeps } from "../settings";
import * as store from "./store";

/**
 * The organization's Stripe customer, created once (idempotency key per organization). After a
 * customer was deleted at Stripe (`customer.deleted` unlinks it), the next one is created under
 * a key of its own: the first key would replay the deleted customer for 24 hours.
 */
export async function ensureCustomer(
  deps: Pick<BillingDeps, "db"> & { stripe: StripeClient },
  input: { organizationId: string },
): Promise<string> {
  const { db, stripe } = deps;
  const { organizationId } = input;
  const organization = await store.findOrganizationCustomer(db, { organizationId });
  if (organization.stripeCustomerId) return organization.stripeCustomerId;
  const email = await store.findFirstAdminEmail(db, { organizationId });
  const deleted = await store.countDeletedCustomers(db, { organizationId });
  const customer = await createCustomer(
    stripe,
    { organizationId, name: organization.name, email },
    deleted === 0
      ? idempotencyKey("org", organizationId, "customer.create")
      : idempotencyKey("org", organizationId, "customer.create", String(deleted)),
  );
  // Only the first writer sets it; anyone else reads what was stored.
  const stored = await store.setCustomerIdOnce(db, {
    organizationId,
    stripeCustomerId: customer.id,
  });
  if (!stored) {
    throw new ConflictError("The organization's Stripe customer was deleted meanwhile; try again", {
      code: "BILLING_CHANGE_IN_PROGRESS",
    });
  }
  return stored;
}
