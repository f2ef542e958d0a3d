import { createClerkClient } from "@clerk/backend";
import { isClerkAPIResponseError } from "@clerk/backend/errors";
import type { Role } from "@zigznote/database";
import { BadGatewayError } from "@zigznote/shared";
import type { Config } from "../config";

/**
 * Clerk's Backend API, for what our API asks of Clerk (adding a member), through the official
 * SDK (`@clerk/backend`) at CLERK_API_URL with CLERK_SECRET_KEY. The SDK sets no timeout, so
 * each call is bounded here (CLERK_TIMEOUT_MS); a call that timed out may still take effect at
 * Clerk, which callers must allow for.
 */

/** Why Clerk did not do what was asked. */
export type ClerkFailure =
  /** Clerk has no such user (or organization). */
  | "not_found"
  /** The user is already a member of the organization at Clerk. */
  | "already_member"
  /** Clerk refused the request (4xx): nothing happened there. */
  | "rejected"
  /** No answer, a timeout or a 5xx: it may or may not have happened at Clerk. */
  | "unavailable";

/**
 * A Clerk call that failed, with what we know of its outcome. As an answer: 502
 * `CLERK_UNAVAILABLE` when the outcome is unknown, else `CLERK_REJECTED` (callers answer
 * `not_found` and `already_member` with codes of their own).
 */
export class ClerkRequestError extends BadGatewayError {
  constructor(
    message: string,
    readonly failure: ClerkFailure,
    readonly clerkStatus: number | null,
    readonly clerkCode: string | null,
  ) {
    super(message, {
      code: failure === "unavailable" ? "CLERK_UNAVAILABLE" : "CLERK_REJECTED",
      details: { clerkStatus, clerkCode },
    });
  }
}

export interface ClerkAdmin {
  /**
   * Makes the Clerk user a member of the Clerk organization with `role`. Resolves to the
   * membership as Clerk's JSON (the shape its webhooks carry); rejects with ClerkRequestError.
   */
  createMembership(input: {
    clerkOrganizationId: string;
    clerkUserId: string;
    role: Role;
  }): Promise<unknown>;
}

/** The Clerk client of `config`, or null when CLERK_SECRET_KEY is unset. */
export function createClerkAdmin(
  config: Pick<Config, "CLERK_SECRET_KEY" | "CLERK_API_URL" | "CLERK_TIMEOUT_MS">,
): ClerkAdmin | null {
  if (!config.CLERK_SECRET_KEY) return null;
  const clerk = createClerkClient({
    secretKey: config.CLERK_SECRET_KEY,
    apiUrl: config.CLERK_API_URL,
  });
  return {
    async createMembership(input) {
      try {
        const membership = await withTimeout(
          clerk.organizations.createOrganizationMembership({
            organizationId: input.clerkOrganizationId,
            userId: input.clerkUserId,
            role: input.role === "admin" ? "org:admin" : "org:member",
          }),
          config.CLERK_TIMEOUT_MS,
        );
        return membership.raw;
      } catch (error) {
        throw toClerkRequestError(error);
      }
    },
  };
}

class ClerkTimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ClerkTimeoutError(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function toClerkRequestError(error: unknown): ClerkRequestError {
  if (error instanceof ClerkTimeoutError) {
    return new ClerkRequestError("Clerk did not answer in time", "unavailable", null, null);
  }
  if (!isClerkAPIResponseError(error)) {
    return new ClerkRequestError("Clerk could not be reached", "unavailable", null, null);
  }
  const status = typeof error.status === "number" ? error.status : null;
  const first = error.errors[0];
  const code = first?.code ?? null;
  const message = first?.longMessage ?? first?.message ?? error.message;
  // The SDK reports a network failure as an error without a status.
  if (status === null || status >= 500 || status === 429) {
    return new ClerkRequestError(`Clerk is unavailable: ${message}`, "unavailable", status, code);
  }
  if (code === "already_a_member_in_organization") {
    return new ClerkRequestError(message, "already_member", status, code);
  }
  if (status === 404 || code === "resource_not_found") {
    return new ClerkRequestError(message, "not_found", status, code);
  }
  return new ClerkRequestError(`Clerk refused: ${message}`, "rejected", status, code);
}
