import type { Db } from "@zigznote/database";
import { z } from "zod";
import { mapClerkRole, upsertMembership, upsertOrganization, upsertUser } from "./identityService";
import * as seatStore from "./seatStore";
import * as store from "./store";

/** Clerk timestamps are milliseconds since the epoch. */
export const epochMs = z.number().int().nonnegative();

/** An organization as Clerk's JSON describes it (webhooks, Backend API answers). */
export const ClerkOrganization = z.object({
  id: z.string().min(1),
  name: z.string(),
  updated_at: epochMs,
});

/** A membership as Clerk's JSON describes it (webhooks, Backend API answers). */
export const ClerkMembership = z.object({
  id: z.string().min(1),
  role: z.string(),
  organization: ClerkOrganization,
  public_user_data: z.object({
    user_id: z.string().min(1),
    first_name: z.string().nullish(),
    last_name: z.string().nullish(),
    image_url: z.string().nullish(),
  }),
  updated_at: epochMs,
});

export type ClerkMembershipData = z.infer<typeof ClerkMembership>;

/**
 * Records a Clerk membership in `tx` (its organization and a placeholder user as needed), and
 * frees the seat our API reserved for it, if any: the membership now counts instead. Both of
 * Clerk's ways of telling us go through here, its webhook and its answer to our own request,
 * in whichever order they arrive. Null when nothing was recorded: the membership was deleted
 * (Clerk never reuses its ids) or its user was.
 */
export async function applyClerkMembership(
  tx: Db,
  membership: ClerkMembershipData,
): Promise<{ organizationId: string; userId: string; membershipId: string } | null> {
  // Every event of one membership is serialized, so that a deletion and a concurrent creation
  // cannot both miss each other.
  await store.lockClerkMembership(tx, membership.id);
  if (await store.isMembershipDeleted(tx, membership.id)) return null;

  // The membership embeds the organization as of its own updated_at: apply it like an update.
  const organization = await upsertOrganization(
    { db: tx },
    {
      clerkId: membership.organization.id,
      name: membership.organization.name,
      updatedAt: new Date(membership.organization.updated_at),
    },
  );
  // The user may not have reached us yet: a placeholder that user.created/updated supersedes.
  const { public_user_data: publicUser } = membership;
  const user = await upsertUser(
    { db: tx },
    {
      clerkId: publicUser.user_id,
      firstName: publicUser.first_name ?? null,
      lastName: publicUser.last_name ?? null,
      imageUrl: publicUser.image_url ?? null,
      updatedAt: new Date(membership.updated_at),
      onlyIfMissing: true,
    },
  );
  // A deleted user's memberships were removed with it (user.deleted): do not bring one back.
  if (user.deletedAt) return null;
  const recorded = await upsertMembership(
    { db: tx },
    {
      organizationId: organization.id,
      userId: user.id,
      role: mapClerkRole(membership.role),
      clerkId: membership.id,
      updatedAt: new Date(membership.updated_at),
    },
  );
  await seatStore.releaseSeat(tx, {
    organizationId: organization.id,
    clerkUserId: publicUser.user_id,
  });
  return { organizationId: organization.id, userId: user.id, membershipId: recorded.id };
}
