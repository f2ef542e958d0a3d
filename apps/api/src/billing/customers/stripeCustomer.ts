import { createCustomer, idempotencyKey, type StripeClient } from "../stripe/provider";
import type { BillingDeps } from "../settings";
import * as store from "./store";

/** The organization's Stripe customer, created once (idempotency key per organization). */
export async function ensureCustomer(
  deps: Pick<BillingDeps, "db"> & { stripe: StripeClient },
  input: { organizationId: string },
): Promise<string> {
  const { db, stripe } = deps;
  const { organizationId } = input;
  const organization = await store.findOrganizationCustomer(db, { organizationId });
  if (organization.stripeCustomerId) return organization.stripeCustomerId;
  const email = await store.findFirstAdminEmail(db, { organizationId });
  const customer = await createCustomer(
    stripe,
    { organizationId, name: organization.name, email },
    idempotencyKey("org", organizationId, "customer.create"),
  );
  // Only the first writer sets it; anyone else reads what was stored.
  return store.setCustomerIdOnce(db, { organizationId, stripeCustomerId: customer.id });
}
