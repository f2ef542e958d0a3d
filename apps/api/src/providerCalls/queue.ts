/**
 * Provider calls that must happen exactly once after a commit (cancel a Stripe subscription, send
 * a Recall bot home), made durable the way recording imports are (recordings/imports.ts).
 *
 * The transaction that decides a call only inserts its row (unique per kind and target, so a
 * replayed or concurrent cause queues nothing new). After the commit the call is made at once,
 * and the `retryProviderCalls` job makes every call still due (a crash, a provider outage), with
 * backoff. A worker claims the row with a conditional UPDATE (one wins, across instances; a dead
 * worker's claim runs out), calls the provider outside any transaction with an idempotency key
 * derived from the call (a retry after a lost answer is not acted on twice), and marks the row
 * done only while its claim holds. Nothing is lost: a call is pending until a provider's answer
 * says it is done.
 */
import type { Db, PrismaClient, ProviderCall } from "@zigznote/database";
import { afterCommit } from "../lib/afterCommit";
import type { Clock } from "../lib/clock";
import { backoffDelayMs, processAllDue } from "../lib/dueWork";
import type { Logger } from "../lib/logger";
import { storableExcerpt } from "../lib/text";
import * as store from "./store";

export type { ProviderCall } from "@zigznote/database";

export interface ProviderCallInput {
  organizationId: string;
  /** `stripe.subscription.cancel`, `recall.bot.leave`, ... (an executor is registered for it). */
  kind: string;
  /** What the call acts on (one call per kind and target, ever). */
  target: string;
  /** Why it was queued (`organization_deleted`, ...), for the record. */
  reason: string;
}

/**
 * Makes the call; resolves with what the provider said (`canceled`, `already_canceled`, ...),
 * which marks the call done. Throwing means "not done": retried later with backoff, or never
 * again for a `PermanentProviderCallError`.
 */
export type ProviderCallExecutor = (call: ProviderCall) => Promise<string>;

/** A failure that another attempt cannot fix: the call is marked failed (an operator acts). */
export class PermanentProviderCallError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentProviderCallError";
  }
}

export type ProviderCallOutcome = "done" | "retry_scheduled" | "failed" | "not_claimed";

export interface ProviderCallsDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** Attempts before a call that keeps failing is marked failed (48: about two days). */
  maxAttempts?: number;
  /** How long a claim lasts: longer than one call can take, with the SDKs' own retries. */
  claimMs?: number;
}

export interface ProviderCalls {
  /** Sets who makes the calls of `kind` (each feature registers its own, once). */
  register(kind: string, executor: ProviderCallExecutor): void;
  /**
   * Queues the calls in `db` (the caller's transaction); those newly queued are made once it
   * committed. With `isDueNow`, a call already queued and waiting out its backoff is made now
   * too (the cause that waited has changed: a bot not in the call yet reports itself in).
   * Returns how many were newly queued or made due.
   */
  enqueue(db: Db, calls: ProviderCallInput[], options?: { isDueNow?: boolean }): Promise<number>;
  /** Why the call of `kind` on `target` was queued (its `reason`), or null if it never was. */
  reasonOf(db: Db, input: { kind: string; target: string }): Promise<string | null>;
  /** Makes one call now if it is due and nobody else holds it. */
  process(id: string): Promise<ProviderCallOutcome>;
  /** The job's pass: every due call, in batches, a few at a time. */
  processDue(options: {
    batchSize: number;
    concurrency: number;
  }): Promise<{ done: number; attempted: number; failed: number }>;
  /** Resolves when the calls started after commits so far have settled (tests, shutdown). */
  idle(): Promise<void>;
}

export function createProviderCalls(deps: ProviderCallsDeps): ProviderCalls {
  const { db, clock, logger } = deps;
  const executors = new Map<string, ProviderCallExecutor>();
  const pending = new Set<Promise<unknown>>();
  const maxAttempts = deps.maxAttempts ?? 48;
  const claimMs = deps.claimMs ?? 5 * 60 * 1000;

  async function process(id: string): Promise<ProviderCallOutcome> {
    const now = clock.now();
    const call = await store.claimProviderCall(db, {
      id,
      now,
      claimedUntil: new Date(now.getTime() + claimMs),
    });
    if (!call) return "not_claimed";
    const context = {
      callId: call.id,
      kind: call.kind,
      target: call.target,
      attempts: call.attempts,
    };
    try {
      const executor = executors.get(call.kind);
      if (!executor) throw new Error(`no executor for provider calls of kind ${call.kind}`);
      const result = await executor(call);
      if (
        !(await store.markProviderCallDone(db, {
          id,
          attempts: call.attempts,
          result,
          now: clock.now(),
        }))
      ) {
        logger.warn(context, "provider call taken over while it ran");
        return "not_claimed";
      }
      logger.info({ ...context, result }, "provider call done");
      return "done";
    } catch (error) {
      const isExhausted =
        error instanceof PermanentProviderCallError || call.attempts >= maxAttempts;
      const message = error instanceof Error ? error.message : String(error);
      const recorded = await store.markProviderCallAttemptFailed(db, {
        id,
        attempts: call.attempts,
        isExhausted,
        lastError: storableExcerpt(message, 2000),
        nextAttemptAt: new Date(clock.now().getTime() + backoffDelayMs(call.attempts)),
      });
      if (!recorded) {
        logger.warn({ ...context, err: error }, "provider call taken over while it ran");
        return "not_claimed";
      }
      if (isExhausted) {
        logger.error(
          { ...context, err: error },
          "provider call given up: make it by hand (provider_calls row marked failed)",
        );
        return "failed";
      }
      logger.warn({ ...context, err: error }, "provider call failed; retried later");
      return "retry_scheduled";
    }
  }

  function track<T>(work: Promise<T>): void {
    const settled = work.then(
      () => undefined,
      (error: unknown) => logger.error({ err: error }, "provider calls after commit failed"),
    );
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  }

  return {
    register(kind, executor) {
      if (executors.has(kind))
        throw new Error(`provider calls of kind ${kind} already have an executor`);
      executors.set(kind, executor);
    },
    async enqueue(target, calls, options) {
      const ids = await store.insertProviderCalls(target, {
        calls,
        now: clock.now(),
        isDueNow: options?.isDueNow,
      });
      if (ids.length > 0) {
        afterCommit(() => {
          track(Promise.all(ids.map((id) => process(id))));
        });
      }
      return ids.length;
    },
    reasonOf: (target, input) => store.findProviderCallReason(target, input),
    process,
    async processDue(options) {
      const outcomes = await processAllDue({
        findDue: (limit) => store.findDueProviderCallIds(db, { now: clock.now(), limit }),
        process,
        ...options,
      });
      return {
        done: outcomes.filter((outcome) => outcome === "done").length,
        attempted: outcomes.length,
        failed: outcomes.filter((outcome) => outcome === "failed").length,
      };
    },
    async idle() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
