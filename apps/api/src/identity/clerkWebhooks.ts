import type { Db, Prisma } from "@zigznote/database";
import { z } from "zod";
import { checkPlanViolations, type ViolationSettings } from "../billing";
import type { Clock } from "../lib/clock";
import {
  applyClerkMembership,
  ClerkMembership,
  ClerkOrganization,
  epochMs,
} from "./clerkMemberships";
import {
  deleteMembership,
  deleteOrganization,
  deleteUser,
  upsertOrganization,
} from "./identityService";
import * as store from "./store";
import type {
  StatementHandler,
  WebhookEvent,
  WebhookHandlerHooks,
  WebhookRegistry,
} from "../webhooks";

/** What the Clerk handlers need besides the transaction. */
export interface ClerkHandlerDeps {
  clock: Clock;
  /** Membership changes re-check the organization's plan violations with these rules. */
  violations: ViolationSettings;
  /**
   * Runs in the transaction that records an organization's deletion (the composition root
   * wires billing's and bots': queue the cancellation of its subscriptions and send its bots
   * home, both made after the commit and retried until done).
   */
  onOrganizationDeleted?: (tx: Db, organizationId: string) => Promise<void>;
}

type ClerkHooks = WebhookHandlerHooks & { deps: ClerkHandlerDeps };
type ClerkHandler = (
  event: WebhookEvent,
  tx: Prisma.TransactionClient,
  hooks: ClerkHooks,
) => Promise<void>;

/**
 * Clerk's user, organization and membership events -> our local copies (identityService).
 *
 * Svix delivers them at least once, concurrently and in any order, so each handler is written to
 * converge: updates carry Clerk's `updated_at` and only apply over older data, deletions are final
 * (tombstones for users and organizations, `deleted_memberships` for memberships, whose ids Clerk
 * never reuses), and a membership event may arrive before its user or organization.
 */

/** The envelope of every Clerk webhook: `{ data, object: "event", type, timestamp, instance_id }`. */
const ClerkEnvelope = z.object({
  type: z.string(),
  object: z.literal("event").optional(),
  timestamp: epochMs.optional(),
  data: z.unknown(),
});

const ClerkUser = z.object({
  id: z.string().min(1),
  email_addresses: z
    .array(z.object({ id: z.string(), email_address: z.string() }))
    .nullish()
    .transform((list) => list ?? []),
  primary_email_address_id: z.string().nullish(),
  first_name: z.string().nullish(),
  last_name: z.string().nullish(),
  username: z.string().nullish(),
  image_url: z.string().nullish(),
  updated_at: epochMs,
});

/** `user.deleted` / `organization.deleted` carry only `{ id, object, deleted: true }`. */
const ClerkDeleted = z.object({ id: z.string().min(1), deleted: z.boolean().optional() });

/** Parses the event's `data` with `schema` (a ZodError fails the delivery: nothing recorded). */
function dataOf<T extends z.ZodType>(event: WebhookEvent, schema: T): z.infer<T> {
  return schema.parse(ClerkEnvelope.parse(event.payload).data);
}

/** When the event happened: Clerk's envelope timestamp, else when we received it. */
function occurredAt(event: WebhookEvent): Date {
  const { timestamp } = ClerkEnvelope.parse(event.payload);
  return timestamp === undefined ? event.receivedAt : new Date(timestamp);
}

/**
 * user.created / user.updated: one upsert, so it runs as one statement with the claim. The event
 * is the whole user: what it leaves out (no name, no e-mail any more) is cleared here too.
 */
const upsertUserFromEvent: StatementHandler = {
  statement(event, claimed) {
    const user = dataOf(event, ClerkUser);
    const primary =
      user.email_addresses.find((address) => address.id === user.primary_email_address_id) ??
      user.email_addresses[0];
    return store.userUpsertStatement(
      {
        clerkId: user.id,
        email: primary?.email_address ?? null,
        firstName: user.first_name ?? null,
        lastName: user.last_name ?? null,
        username: user.username ?? null,
        imageUrl: user.image_url ?? null,
        updatedAt: new Date(user.updated_at),
      },
      false,
      claimed,
    );
  },
};

/**
 * Re-checks the plan violations of organizations whose membership changed, in the event's
 * transaction: the violation list (and its notices) commits with the change or not at all.
 * Notices queued here are sent by the outbox after the commit.
 */
async function recheckViolations(
  tx: Db,
  organizationIds: string[],
  hooks: ClerkHooks,
): Promise<void> {
  if (organizationIds.length === 0) return;
  const { violations, clock } = hooks.deps;
  // In id order, so two transactions locking several organizations cannot deadlock.
  for (const id of [...new Set(organizationIds)].sort()) {
    await checkPlanViolations(
      { db: tx, settings: violations },
      { organizationId: id, now: clock.now() },
    );
  }
}

const deleteUserFromEvent: ClerkHandler = async (event, tx, hooks) => {
  const { id } = dataOf(event, ClerkDeleted);
  // The organizations that lose a member, locked (in id order) before their memberships go,
  // as the membership handlers do, so this and a concurrent membership event cannot deadlock.
  const affected = await store.lockOrganizationsOfUser(tx, id);
  await deleteUser({ db: tx }, { clerkId: id, at: occurredAt(event) });
  await recheckViolations(tx, affected, hooks);
};

const upsertOrganizationFromEvent: ClerkHandler = async (event, tx) => {
  const organization = dataOf(event, ClerkOrganization);
  await upsertOrganization(
    { db: tx },
    {
      clerkId: organization.id,
      name: organization.name,
      updatedAt: new Date(organization.updated_at),
    },
  );
};

/**
 * Marks the organization deleted and, in the same transaction, hands it to the features that
 * must stop what it pays for and what it records (`onOrganizationDeleted`): they queue their
 * provider calls here, so the calls exist exactly when the deletion committed, once per
 * subscription and bot however often (or concurrently) the event is delivered.
 */
const deleteOrganizationFromEvent: ClerkHandler = async (event, tx, hooks) => {
  const { id } = dataOf(event, ClerkDeleted);
  await deleteOrganization({ db: tx }, { clerkId: id, at: occurredAt(event) });
  // The row is locked by the update above: a bot reservation or a plan change of the
  // organization (both lock it) is ordered before or after this, never in between.
  const organizationId = await store.lockOrganizationByClerkId(tx, id);
  if (organizationId) await hooks.deps.onOrganizationDeleted?.(tx, organizationId);
};

/**
 * Clerk owns memberships, so a new member over the plan's limit cannot be refused here: the
 * check below records the `team_members` violation (action notify_admin) and queues the admins'
 * notice in this transaction. Members added through our own API (`POST /api/v1/members`) are
 * refused up front, their seat reserved under the organization's lock before Clerk is asked; the
 * membership takes that seat's place here (`applyClerkMembership`).
 */
const upsertMembershipFromEvent: ClerkHandler = async (event, tx, hooks) => {
  const applied = await applyClerkMembership(tx, dataOf(event, ClerkMembership));
  if (applied && event.type === "organizationMembership.created") {
    await recheckViolations(tx, [applied.organizationId], hooks);
  }
};

const deleteMembershipFromEvent: ClerkHandler = async (event, tx, hooks) => {
  const membership = dataOf(event, ClerkMembership);
  const at = occurredAt(event);
  await store.lockClerkMembership(tx, membership.id);
  // Lock the organization before deleting: creations lock it first too (upsertOrganization), and
  // the violation check below needs it, so both orders agree and cannot deadlock.
  const locked = await store.lockOrganizationByClerkId(tx, membership.organization.id);
  await store.insertMembershipTombstone(tx, {
    clerkMembershipId: membership.id,
    organizationClerkId: membership.organization.id,
    userClerkId: membership.public_user_data.user_id,
    at,
  });
  await store.deleteMembershipsByClerkId(tx, membership.id);
  // A membership provisioned from a session token has no Clerk id yet: match it by its pair.
  const organization = await store.findOrganizationRef(tx, membership.organization.id);
  const user = await store.findUserRef(tx, membership.public_user_data.user_id);
  if (organization && user) {
    await deleteMembership({ db: tx }, { organizationId: organization.id, userId: user.id, at });
  }
  await recheckViolations(tx, locked ? [locked] : [], hooks);
};

/** The Clerk event types we act on. Others are recorded and acknowledged. */
export const CLERK_EVENT_HANDLERS: Readonly<Record<string, ClerkHandler | StatementHandler>> = {
  "user.created": upsertUserFromEvent,
  "user.updated": upsertUserFromEvent,
  "user.deleted": deleteUserFromEvent,
  "organization.created": upsertOrganizationFromEvent,
  "organization.updated": upsertOrganizationFromEvent,
  "organization.deleted": deleteOrganizationFromEvent,
  "organizationMembership.created": upsertMembershipFromEvent,
  "organizationMembership.updated": upsertMembershipFromEvent,
  "organizationMembership.deleted": deleteMembershipFromEvent,
};

/** Registers the Clerk handlers, giving them `deps`. */
export function registerClerkHandlers(
  registry: WebhookRegistry,
  deps: ClerkHandlerDeps,
): WebhookRegistry {
  for (const [type, handler] of Object.entries(CLERK_EVENT_HANDLERS)) {
    registry.register(
      "clerk",
      type,
      typeof handler === "function"
        ? (event, tx, hooks) => handler(event, tx, { ...hooks, deps })
        : handler,
    );
  }
  return registry;
}
