import type { PrismaClient, Role } from "@zigznote/database";
import { ConflictError, NotFoundError, ProviderNotConfiguredError } from "@zigznote/shared";
import { guardWrite } from "../billing";
import { transaction } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import { MINUTE_MS } from "../lib/time";
import { ClerkRequestError, type ClerkAdmin } from "./clerkClient";
import { applyClerkMembership, ClerkMembership } from "./clerkMemberships";
import { mapClerkRole } from "./identityService";
import * as seatStore from "./seatStore";

/**
 * Members added through our API. Clerk owns memberships, and asking it is an HTTP call, which
 * never happens inside a transaction. So the plan's team member limit is decided the way bots
 * are reserved: (1) in one transaction, billing's guard takes the organization's lock and counts
 * the members plus the seats already reserved, and a seat is reserved for the user; (2) Clerk is
 * asked, outside any transaction; (3) its membership is recorded and the seat freed in one
 * transaction (Clerk's webhook may do it first: same function, either order). Two adds can
 * therefore never both take the last seat, on any instance. What we do not know is kept
 * counted: when Clerk does not answer, the seat stays reserved until it expires (or the
 * membership's webhook arrives); only a definite refusal frees it at once.
 */

/** How long a seat stays reserved without Clerk's answer (longer than any Clerk call waits). */
export const SEAT_RESERVATION_MS = 10 * MINUTE_MS;

export interface MemberDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** Clerk's Backend API; null without CLERK_SECRET_KEY (adding members answers 503). */
  clerk: ClerkAdmin | null;
}

export interface AddMemberInput {
  organizationId: string;
  /** Clerk's id of the user to add (`user_...`). */
  clerkUserId: string;
  role: Role;
}

export interface AddedMember {
  id: string;
  organizationId: string;
  userId: string;
  clerkUserId: string;
  clerkMembershipId: string;
  role: Role;
}

/**
 * Adds the Clerk user to the organization at Clerk, within the plan's team member limit. 403
 * PLAN_LIMIT_TEAM_MEMBERS at the limit and 402 while suspended (billing's guard), 409
 * ALREADY_MEMBER, 409 ORGANIZATION_NOT_IN_CLERK, 404 CLERK_USER_NOT_FOUND, 502 CLERK_REJECTED or
 * CLERK_UNAVAILABLE, 503 PROVIDER_NOT_CONFIGURED (before anything is written).
 */
export async function addMember(deps: MemberDeps, input: AddMemberInput): Promise<AddedMember> {
  const clerk = deps.clerk;
  if (!clerk) {
    throw new ProviderNotConfiguredError("Adding members needs Clerk's Backend API", {
      provider: "clerk",
      variables: ["CLERK_SECRET_KEY"],
    });
  }
  const { organizationId, clerkUserId, role } = input;
  const now = deps.clock.now();

  // 1. Reserve a seat within the limit.
  const clerkOrganizationId = await transaction(deps.db, async (tx) => {
    const clerkId = await seatStore.findOrganizationClerkId(tx, organizationId);
    if (clerkId === undefined) throw new NotFoundError("Organization not found");
    if (clerkId === null) {
      throw new ConflictError("This organization is not a Clerk organization", {
        code: "ORGANIZATION_NOT_IN_CLERK",
      });
    }
    if (await seatStore.isMember(tx, { organizationId, clerkUserId })) throw alreadyMember(input);
    // A seat this user already holds (an add whose outcome Clerk did not tell) is not taken
    // twice: the retry asks Clerk again with it, and billing only checks the suspension.
    const holdsSeat = await seatStore.hasLiveSeatReservation(tx, {
      organizationId,
      clerkUserId,
      now,
    });
    await guardWrite(tx, { organizationId, action: holdsSeat ? "write" : "member.add", now });
    await seatStore.reserveSeat(tx, {
      organizationId,
      clerkUserId,
      role,
      now,
      expiresAt: new Date(now.getTime() + SEAT_RESERVATION_MS),
    });
    return clerkId;
  });

  // 2. Ask Clerk, outside any transaction.
  let raw: unknown;
  try {
    raw = await clerk.createMembership({ clerkOrganizationId, clerkUserId, role });
  } catch (error) {
    if (!(error instanceof ClerkRequestError)) throw error;
    deps.logger.warn(
      { organizationId, clerkUserId, failure: error.failure, clerkStatus: error.clerkStatus },
      "Clerk did not add the member",
    );
    // Nothing happened at Clerk: the seat is free again. Otherwise it stays counted until the
    // membership's webhook replaces it or it expires.
    if (error.failure === "not_found" || error.failure === "rejected") {
      await seatStore.releaseSeat(deps.db, { organizationId, clerkUserId });
    }
    if (error.failure === "already_member") throw alreadyMember(input);
    if (error.failure === "not_found") {
      throw new NotFoundError("Clerk has no user with this id", {
        code: "CLERK_USER_NOT_FOUND",
        details: { userId: clerkUserId },
      });
    }
    throw error;
  }

  // 3. Record Clerk's membership in place of the seat.
  const parsed = ClerkMembership.safeParse(raw);
  if (!parsed.success) {
    // Clerk acted but said something we cannot read: its webhook will record the membership.
    throw new ClerkRequestError(
      "Clerk's answer could not be read; the membership arrives with its webhook",
      "unavailable",
      null,
      null,
    );
  }
  const membership = parsed.data;
  const recorded = await transaction(deps.db, (tx) => applyClerkMembership(tx, membership));
  if (!recorded) {
    // Deleted at Clerk (or its user) before we could record it: nothing to add any more.
    await seatStore.releaseSeat(deps.db, { organizationId, clerkUserId });
    throw new ConflictError("The membership was removed at Clerk while it was being added", {
      code: "CONFLICT",
    });
  }
  return {
    id: recorded.membershipId,
    organizationId: recorded.organizationId,
    userId: recorded.userId,
    clerkUserId,
    clerkMembershipId: membership.id,
    role: mapClerkRole(membership.role),
  };
}

function alreadyMember(input: AddMemberInput): ConflictError {
  return new ConflictError("The user is already a member of this organization", {
    code: "ALREADY_MEMBER",
    details: { userId: input.clerkUserId },
  });
}
