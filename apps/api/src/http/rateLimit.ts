/**
 * Request budgets. Every authenticated request counts against its organization's budget per
 * minute (every API key and user of the organization draw on the one budget, its size set by
 * the plan); a request whose authentication failed counts against its client address (as
 * `req.ip` says: TRUST_PROXY). A platform admin's own requests are not counted.
 *
 * One count is one `consume` of rate-limiter-flexible: in Redis when the app has one (one
 * command, shared by every instance), in memory otherwise. In memory each subject has its own
 * store, bounded by an LRU of `maxMemoryKeys`: a flood of addresses (unauthenticated requests,
 * cheap to send from many) evicts only addresses' counts, never an organization's (which would
 * reset its budget), and many organizations never evict a spent address. The budget is
 * read from what authentication loaded (`AuthContext.planSlug`): no database query. When
 * authentication knows its caller before it has decided (a cached API key: `req.onCallerKnown`),
 * the count starts then and goes to Redis with authentication's own commands, in one round trip;
 * it is given back if authentication then refuses that caller.
 *
 * Every counted answer carries the IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers):
 * `RateLimit-Policy: "organization";q=600;w=60` and `RateLimit: "organization";r=42;t=17`
 * (remaining requests, seconds until the window resets). Over budget: 429 RATE_LIMITED with
 * Retry-After. When Redis fails the request is served (fail open) without `RateLimit`, a warning
 * is logged (at most once a minute) and `zigznote_rate_limit_store_errors_total` counts it.
 */
import { TooManyRequestsError } from "@zigznote/shared";
import type { Request, RequestHandler, Response } from "express";
import type { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from "rate-limiter-flexible";
import { BoundedRateLimiterMemory } from "../lib/boundedRateLimiterMemory";
import { clientAddressKey } from "../lib/clientAddress";
import type { Logger } from "../lib/logger";
import type { AuthContext } from "./auth";

export const RATE_LIMIT_WINDOW_SECONDS = 60;
const WARNING_INTERVAL_MS = 60_000;
/** The limiter never refuses by itself: the budget is compared here, per request. */
const UNLIMITED_POINTS = 1_000_000_000;

export type RateLimitSubject = "organization" | "address";

export interface RateLimitDeps {
  /** Built with `redisClientOptions`: its command timeout is what bounds a count's wait. */
  redis: Redis | null;
  /** REDIS_KEY_PREFIX: the counters live under `<prefix>:ratelimit:`. */
  keyPrefix: string;
  logger: Logger;
  /** The caller's budget per minute; null: not counted (a platform admin's own requests). */
  budgetOf(auth: AuthContext): number | null;
  /** Requests whose authentication failed, per client address and minute. */
  unauthenticatedBudget: number;
  /**
   * In-memory counters at most per subject: the organizations' store and the addresses' store
   * each hold this many (least recently counted evicted).
   */
  maxMemoryKeys: number;
  onLimited(subject: RateLimitSubject): void;
  onStoreError(): void;
}

export interface RateLimiter {
  /** `authenticate`, then one count: the organization's, or the address's when it failed. */
  afterAuthentication(authenticate: RequestHandler): RequestHandler;
  /** One count for the address (a path under /api/v1 that no route has, or a method it refuses). */
  countAddress: RequestHandler;
}

/** Runs an Express middleware to its end; what it passed to `next` (or threw), else null. */
function runMiddleware(middleware: RequestHandler, req: Request, res: Response): Promise<unknown> {
  return new Promise((resolve) => {
    let isDone = false;
    const done = (error?: unknown) => {
      if (isDone) return;
      isDone = true;
      resolve(error ?? null);
    };
    try {
      const result: unknown = middleware(req, res, done);
      if (result instanceof Promise) result.catch(done);
    } catch (error) {
      done(error);
    }
  });
}

/** Whether `failure` is a 429 of its own whose wait is at least the budget's `refusal`. */
function outlasts(failure: unknown, refusal: TooManyRequestsError): boolean {
  return (
    failure instanceof TooManyRequestsError &&
    failure.retryAfterSeconds >= refusal.retryAfterSeconds
  );
}

/** The budgets of one app (its Redis or its memory). */
export function createRateLimiter(deps: RateLimitDeps): RateLimiter {
  const options = {
    keyPrefix: `${deps.keyPrefix}:ratelimit`,
    points: UNLIMITED_POINTS,
    duration: RATE_LIMIT_WINDOW_SECONDS,
  };
  // The keys are `<subject>:<id>` in either store, as they always were in Redis.
  const createLimiter = (): RateLimiterAbstract =>
    deps.redis
      ? new RateLimiterRedis({ ...options, storeClient: deps.redis, rejectIfRedisNotReady: true })
      : new BoundedRateLimiterMemory({ ...options, maxKeys: deps.maxMemoryKeys });
  const limiters: Record<RateLimitSubject, RateLimiterAbstract> = {
    organization: createLimiter(),
    address: createLimiter(),
  };
  let lastWarningAt = 0;
  let unreportedErrors = 0;

  function reportStoreError(error: unknown): void {
    deps.onStoreError();
    unreportedErrors += 1;
    const now = Date.now();
    if (now - lastWarningAt < WARNING_INTERVAL_MS) return;
    deps.logger.warn(
      { err: error, failedCounts: unreportedErrors },
      "request budgets are not enforced: the rate limit store (Redis) failed; requests are served",
    );
    lastWarningAt = now;
    unreportedErrors = 0;
  }

  /** Starts counting one request: the counter's state once Redis answered, or null if it failed. */
  function startCount(subject: RateLimitSubject, id: string): Promise<RateLimiterRes | null> {
    // Memory answers at once; Redis within its client's command timeout (lib/redisOptions.ts).
    return limiters[subject].consume(`${subject}:${id}`).then(
      (state) => state,
      (error: unknown) => {
        if (error instanceof RateLimiterRes) return error;
        reportStoreError(error);
        return null;
      },
    );
  }

  /** Sets the RateLimit fields from a count; the 429 to answer when over budget. */
  async function settleCount(
    res: Response,
    subject: RateLimitSubject,
    budget: number,
    counted: Promise<RateLimiterRes | null>,
  ): Promise<TooManyRequestsError | null> {
    res.setHeader("RateLimit-Policy", `"${subject}";q=${budget};w=${RATE_LIMIT_WINDOW_SECONDS}`);
    const state = await counted;
    if (state === null) return null;
    const remaining = Math.max(0, budget - state.consumedPoints);
    const resetSeconds = Math.max(1, Math.ceil(state.msBeforeNext / 1000));
    res.setHeader("RateLimit", `"${subject}";r=${remaining};t=${resetSeconds}`);
    if (state.consumedPoints <= budget) return null;
    deps.onLimited(subject);
    return new TooManyRequestsError(
      subject === "organization"
        ? `The organization's budget of ${budget} requests a minute is spent; retry after Retry-After seconds`
        : `Too many unauthenticated requests from this address (${budget} a minute); retry after Retry-After seconds`,
      {
        code: "RATE_LIMITED",
        retryAfterSeconds: resetSeconds,
        details: { policy: subject, limit: budget, windowSeconds: RATE_LIMIT_WINDOW_SECONDS },
      },
    );
  }

  const countAddress = (req: Request, res: Response) =>
    settleCount(
      res,
      "address",
      deps.unauthenticatedBudget,
      startCount("address", clientAddressKey(req.ip)),
    );

  /** A count started while authentication had not decided yet (`req.onCallerKnown`). */
  interface EarlyCount {
    organizationId: string;
    budget: number;
    counted: Promise<RateLimiterRes | null>;
  }

  /** Gives an early count back: authentication refused the caller, or ended with another. */
  function giveBack(early: EarlyCount): void {
    void early.counted.then((state) => {
      if (state === null) return;
      limiters.organization.reward(`organization:${early.organizationId}`).catch(reportStoreError);
    });
  }

  return {
    afterAuthentication(authenticate) {
      return async (req, res, next) => {
        let early: EarlyCount | null = null;
        req.onCallerKnown = (caller) => {
          const budget = deps.budgetOf(caller);
          const { organizationId } = caller;
          if (budget === null || organizationId === null) return;
          early = { organizationId, budget, counted: startCount("organization", organizationId) };
        };
        const failure = await runMiddleware(authenticate, req, res);
        req.onCallerKnown = undefined;
        const started = early as EarlyCount | null;
        if (failure !== null) {
          if (started) giveBack(started);
          const refusal = await countAddress(req, res);
          // A lockout's 429 says how long the caller really waits (15 minutes, not the
          // budget's minute): retrying after the budget's Retry-After would only be refused again.
          next(refusal && !outlasts(failure, refusal) ? refusal : failure);
          return;
        }
        const budget = deps.budgetOf(req.auth);
        const { organizationId } = req.auth;
        const isKept =
          started !== null &&
          started.organizationId === organizationId &&
          started.budget === budget;
        if (started && !isKept) giveBack(started);
        // A session without an organization (only a platform admin's passes) counts by address.
        const refusal =
          budget === null
            ? null
            : organizationId === null
              ? await countAddress(req, res)
              : await settleCount(
                  res,
                  "organization",
                  budget,
                  isKept ? started.counted : startCount("organization", organizationId),
                );
        next(refusal ?? undefined);
      };
    },
    async countAddress(req, res, next) {
      next((await countAddress(req, res)) ?? undefined);
    },
  };
}
