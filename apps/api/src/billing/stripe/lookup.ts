import type { Db } from "@zigznote/database";
import * as customerStore from "../customers/store";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Our organization for a Stripe customer: by the organization id our metadata carries first,
 * then by the customer id stored on the organization; null when neither is ours.
 */
export function findOrganizationId(
  tx: Db,
  customerId: string | null,
  metadataOrganizationId: string | undefined,
): Promise<string | null> {
  const byMetadata =
    metadataOrganizationId && UUID.test(metadataOrganizationId) ? metadataOrganizationId : null;
  return customerStore.findOrganizationIdForCustomer(tx, {
    organizationId: byMetadata,
    stripeCustomerId: customerId,
  });
}

/** The id of a field Stripe sends as an id or, when expanded, as the object. */
export function idOf(value: string | { id: string } | null | undefined): string | null {
  if (!value) return null;
  return typeof value === "string" ? value : value.id;
}
