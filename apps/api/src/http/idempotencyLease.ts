/**
 * The lease of an `Idempotency-Key` claimed by row (idempotency.ts's `step`): the claim holds
 * until `locked_until`, and the instance running its request moves that on every third of the
 * lease (IDEMPOTENCY_LOCK_SECONDS), so a request may run longer than the lease (a slow provider,
 * a long job run from the console) without a repeat taking its key over and running it again. An
 * instance that dies stops renewing: its claim lapses one lease after its last renewal, and a
 * repeat of the same request then runs. A renewal is guarded by the claim's `owner_id`: a claim
 * that was taken over is never extended.
 *
 * A repeat meanwhile gets 409 IDEMPOTENCY_KEY_IN_USE with Retry-After: 1 while the claim is
 * renewed (the answer may come any moment); once it has gone unrenewed for half the lease (its
 * instance seems dead), the seconds until it lapses.
 *
 * The claim of `POST /meetings` (`deferredStep`) is its transaction's advisory lock, not a row:
 * nothing here runs for it, nor for a request without a key.
 */
import type { PrismaClient } from "@zigznote/database";
import { ConflictError, type AppErrorOptions } from "@zigznote/shared";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import { renewIdempotencyClaim, type IdempotencyKeyRef } from "./idempotencyStore";

/** How long a repeat of a running request is told to wait. */
const IN_USE_RETRY_AFTER_SECONDS = 1;

/** 409 IDEMPOTENCY_KEY_IN_USE, with Retry-After. */
export class IdempotencyKeyInUseError extends ConflictError {
  readonly retryAfterSeconds: number;

  /**
   * `lapsesInMs`: the claim looks abandoned (not renewed lately), and its lease ends in that
   * long; a repeat is told to wait until then. Absent while the claim's request runs.
   */
  constructor(input: { lapsesInMs?: number } = {}, options: AppErrorOptions = {}) {
    const isAbandoned = input.lapsesInMs !== undefined;
    super(
      isAbandoned
        ? "A request with this Idempotency-Key has not answered and its claim is no longer renewed " +
            "(the instance running it may have stopped); retry after Retry-After, when the claim " +
            "lapses and a repeat runs"
        : "A request with this Idempotency-Key is still running; retry after Retry-After for its answer",
      { ...options, code: "IDEMPOTENCY_KEY_IN_USE" },
    );
    this.retryAfterSeconds = isAbandoned
      ? Math.max(IN_USE_RETRY_AFTER_SECONDS, Math.ceil((input.lapsesInMs ?? 0) / 1000))
      : IN_USE_RETRY_AFTER_SECONDS;
  }

  override headers(): Record<string, string> {
    return { "Retry-After": String(this.retryAfterSeconds) };
  }
}

export interface ClaimLeaseDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** The lease (IDEMPOTENCY_LOCK_SECONDS). */
  lockMs: number;
  /**
   * How often a running request's claim is renewed, in real time (default: a third of `lockMs`,
   * so that two missed renewals still leave a third of the lease).
   */
  renewalMs?: number;
}

/** The claim leases of one app. */
export interface ClaimLeases {
  /**
   * Renews the claim's lease while its request runs; returns the stop, to call once the answer
   * is stored or the claim released.
   */
  renewWhileRunning(claim: IdempotencyKeyRef & { ownerId: string }): () => void;
  /**
   * The 409 for a repeat of a request whose claim (lease ending at `lockedUntil`) is running:
   * whether it looks alive or abandoned.
   */
  inUseError(lockedUntil: Date | null): IdempotencyKeyInUseError;
}

/** Renewals every `renewalMs` (unref'd timers) and the Retry-After of a claim in use. */
export function createClaimLeases(deps: ClaimLeaseDeps): ClaimLeases {
  const renewalMs = Math.max(1, Math.floor(deps.renewalMs ?? deps.lockMs / 3));
  return {
    renewWhileRunning(claim) {
      const { organizationId, keyHash, ownerId } = claim;
      let isRenewing = false;
      const timer = setInterval(() => {
        // The previous renewal is still waiting for the database.
        if (isRenewing) return;
        isRenewing = true;
        const lockedUntil = new Date(deps.clock.now().getTime() + deps.lockMs);
        renewIdempotencyClaim(deps.db, { organizationId, keyHash, ownerId, lockedUntil })
          .then(
            // Taken over (its lease ran out all the same: the database did not answer for a
            // whole lease): not renewed again, and the answer reports it when it is not stored.
            (isHeld) => {
              if (!isHeld) clearInterval(timer);
            },
            // The next renewal tries again.
            (error: unknown) => {
              deps.logger.warn({ err: error }, "could not renew an idempotency claim");
            },
          )
          .finally(() => {
            isRenewing = false;
          });
      }, renewalMs);
      // Never the reason a process stays up.
      timer.unref();
      return () => clearInterval(timer);
    },

    inUseError(lockedUntil) {
      if (lockedUntil === null) return new IdempotencyKeyInUseError();
      // Less than half the lease left: not renewed for half a lease, though renewals come every
      // third of it.
      const lapsesInMs = new Date(lockedUntil).getTime() - deps.clock.now().getTime();
      return lapsesInMs < deps.lockMs / 2
        ? new IdempotencyKeyInUseError({ lapsesInMs })
        : new IdempotencyKeyInUseError();
    },
  };
}
