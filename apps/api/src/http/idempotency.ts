/**
 * `Idempotency-Key` on the API's writes (POST, PATCH, DELETE under /api/v1): a retry of a write
 * replays the first answer instead of writing again.
 *
 * - The key (1-255 printable ASCII characters) belongs to the caller's organization (to the
 *   platform admin, for a session without one: the console's). Its first
 *   request claims it with one INSERT (primary key: organization, SHA-256 of the key), so across
 *   instances exactly one request runs the handler; a repeat meanwhile gets 409
 *   IDEMPOTENCY_KEY_IN_USE with Retry-After.
 * - The claim is a lease (IDEMPOTENCY_LOCK_SECONDS) that its instance renews while the request
 *   runs, so a request may run longer than the lease; Retry-After says whether the claim looks
 *   alive (1) or abandoned (the seconds until it lapses). See idempotencyLease.ts.
 * - The answer (status, Content-Type, Location, ETag, body) is stored for IDEMPOTENCY_KEY_TTL_HOURS.
 *   A route whose write is one transaction stores it in that transaction (`recordInTransaction`
 *   hands its service a `TransactionBracket`), so a crash cannot keep the effect and lose the
 *   answer, or the reverse; any other answer is stored just before it is sent.
 * - A repeat with the same key and the same request (method, path with query, body as JSON with
 *   sorted keys) gets the stored answer with `Idempotent-Replayed: true`, the handler untouched;
 *   another request with the key gets 422 IDEMPOTENCY_KEY_REUSED.
 * - Not stored, so that the retry runs for real: a request refused before its handler ran
 *   (authentication, rate limit, scope, billing's write guard, validation: the claim is
 *   released), billing's refusal in the write's own transaction (`refuse`: the route's guard
 *   lists its codes), a refusal that holds only for the moment (a transient code:
 *   `isTransientCode`, BOT_NOT_IN_CALL_YET say, whose message asks for the retry), refused input
 *   (400, also when a service finds it) and a 5xx answer. Any other 4xx is stored.
 * - A route whose effects are all in one transaction that no guard precedes (`POST /meetings`)
 *   claims the key in that transaction instead, in its BEGIN's round trip: the key's
 *   transaction-scoped advisory lock, taken without waiting, then whether a row of the key
 *   exists; the key's row is written once, answered, in COMMIT's round trip. Both are database
 *   procedures (plans kept per connection, no rows to read back), called as prepared statements
 *   with the answer's bytes as a binary parameter (`runStatementBatch`). The key costs the
 *   write no round trip and no commit of its own, and a crash leaves nothing behind (the lock
 *   ends with the connection). A claim lost there (the lock held by a concurrent request, a row
 *   found, or a row of another route's request met at COMMIT) rolls the transaction back, and the
 *   request is answered as a repeat (replay, 422 or 409).
 * - A claim whose request never answered (its instance died) is no longer renewed: it blocks
 *   repeats until its lease ends, IDEMPOTENCY_LOCK_SECONDS after its last renewal; then a repeat
 *   of the same request takes it over.
 * - The database holds neither the key nor the answer in clear: the answer is encrypted
 *   (AES-256-GCM) with a key derived from the Idempotency-Key, which only the client knows. An
 *   API key's secret in a stored answer is readable only by whoever sends the key again.
 */
import { hash, randomUUID } from "node:crypto";
import type { PrismaClient, TransactionBracket } from "@zigznote/database";
import {
  BadRequestError,
  isErrorCode,
  isTransientCode,
  UnprocessableContentError,
} from "@zigznote/shared";
import type { Request, RequestHandler, Response } from "express";
import stringify from "safe-stable-stringify";
import type { Clock } from "../lib/clock";
import type { Logger } from "../lib/logger";
import {
  answerIdempotencyKey,
  answerInTransactionStatement,
  answerStatement,
  claimIdempotencyKey,
  claimInTransactionStatement,
  findIdempotencyKey,
  isKeyHeldError,
  releaseIdempotencyKey,
  storeIdempotentAnswer,
  type IdempotencyClaim,
  type IdempotencyKeyRef,
} from "./idempotencyStore";
import { createClaimLeases, IdempotencyKeyInUseError } from "./idempotencyLease";
import {
  answerParts,
  answerSecret,
  openAnswer,
  sealAnswer,
  type AnswerKey,
  type IdempotentAnswer,
} from "./idempotentAnswers";

export type { IdempotentAnswer };

export const IDEMPOTENCY_KEY_HEADER = "Idempotency-Key";
export const REPLAYED_HEADER = "Idempotent-Replayed";

/** 1-255 visible ASCII characters or spaces (what a header carries without encoding). */
const KEY_PATTERN = /^[\x20-\x7e]{1,255}$/;

/** The headers of an answer that a replay repeats (the rest is per response). */
const STORED_HEADERS = ["content-type", "location", "etag"] as const;

export { IdempotencyKeyInUseError };

/** What a handler receives (`RouteInput.idempotency`). */
export interface Idempotency {
  /** Whether this request holds an Idempotency-Key claim (there is an answer to store). */
  readonly isKeyed: boolean;
  /**
   * What a service that writes in one transaction brackets it with: the key's claim before it
   * (routes that claim in their transaction) and `answerOf(result)` stored last in it, before it
   * commits. Undefined when the request has no key (the service then needs no transaction for
   * it). The handler must then send exactly that answer.
   */
  recordInTransaction<T>(
    answerOf: (result: T) => IdempotentAnswer,
  ): TransactionBracket<T> | undefined;
  /** The JSON of the body recorded in the transaction with `status`, if one was. */
  recordedJson(status: number): Buffer | undefined;
  /**
   * The write's guard refused the request in the handler's transaction (nothing written): its
   * answer is not kept, as when the guard refuses before the handler.
   */
  refuse(): void;
}

/** The handle of a request without a key. */
export const UNKEYED: Idempotency = {
  isKeyed: false,
  recordInTransaction: () => undefined,
  recordedJson: () => undefined,
  refuse: () => undefined,
};

export interface IdempotencyDeps {
  db: PrismaClient;
  clock: Clock;
  logger: Logger;
  /** How long answers are kept (IDEMPOTENCY_KEY_TTL_HOURS). */
  keyTtlMs: number;
  /**
   * The lease of a claim (IDEMPOTENCY_LOCK_SECONDS): how long an unanswered claim holds after
   * it was made or last renewed.
   */
  lockMs: number;
  /** How often a running request's claim is renewed, in real time (idempotencyLease.ts). */
  renewalMs?: number;
}

/** One keyed request's state. */
interface Claim extends IdempotencyKeyRef, AnswerKey {
  ownerId: string;
  hasHandlerStarted: boolean;
  /** The status the handler stored in its transaction, if it did. */
  recordedStatus: number | null;
  /** The body it stored, as JSON (the answer sends these bytes rather than serialize again). */
  recordedJson?: Buffer;
  /** What the claim's row holds (a deferred claim writes it, answered, at its transaction's COMMIT). */
  row: IdempotencyClaim;
  /** Whether this request owns a claim's row (the step's claim; never a deferred one). */
  isClaimed: boolean;
  /** A deferred claim found the key taken: the request is answered as a repeat. */
  isLost: boolean;
  /** Stops renewing the claim's lease (the step's claim, while its request runs). */
  stopRenewing?: () => void;
}

/**
 * Whether the write's transaction failed because its deferred claim was lost, at BEGIN or at
 * COMMIT: the request is then answered as a repeat (`answerLostClaim`).
 */
export const isClaimLost: (error: unknown) => boolean = isKeyHeldError;

export interface IdempotencyKernel {
  /** The route step, after authentication and scope, before the write guard and validation. */
  step: RequestHandler;
  /**
   * The step of a route whose one transaction claims the key at its BEGIN: the request's claim
   * is prepared, not made.
   */
  deferredStep: RequestHandler;
  /** Answers a request whose deferred claim was lost, as the step answers a repeat. */
  answerLostClaim(req: Request, res: Response): Promise<void>;
  /** Marks that the handler runs now (what fails later is its answer) and returns its handle. */
  handlerStarts(req: Request): Idempotency;
}

/** The methods whose requests take a key. PUT is idempotent by itself (a recording upload). */
export function isIdempotentWrite(method: string, path: string): boolean {
  return (
    (method === "post" || method === "patch" || method === "delete") && path.startsWith("/api/v1/")
  );
}

/** SHA-256 of the parts, each followed by a NUL (one-shot: no Hash object per request). */
function sha256(...parts: string[]): Buffer {
  return hash("sha256", parts.map((part) => `${part}\0`).join(""), "buffer");
}

/** The request as compared between repeats: method, path with query, body (keys sorted). */
export function requestFingerprint(method: string, url: string, body: unknown): Buffer {
  return sha256(method.toUpperCase(), url, stringify(body ?? null) ?? "null");
}

/** The kernel's idempotency for one app (its database, clock and settings). */
export function createIdempotency(deps: IdempotencyDeps): IdempotencyKernel {
  const claims = new WeakMap<Request, Claim>();
  const leases = createClaimLeases(deps);

  /** Stores or releases the claim as the answer now leaving says; then lets it leave. */
  async function settle(claim: Claim, res: Response, chunk: unknown): Promise<void> {
    claim.stopRenewing?.();
    const status = res.statusCode;
    // Answered as a repeat of another request: nothing here is this request's.
    if (claim.isLost) return;
    // Refused input (400) is not an answer to keep either, wherever it was found: a corrected
    // request with the same key runs. Nor is a refusal that holds only for now (a bot still
    // joining, a job run under way: "retry shortly"), whose retry must run.
    const code = res.locals.errorCode;
    const isTransient = code !== undefined && isErrorCode(code) && isTransientCode(code);
    const isKept = claim.hasHandlerStarted && status < 500 && status !== 400 && !isTransient;
    if (!isKept) {
      if (claim.isClaimed) await releaseIdempotencyKey(deps.db, claim);
      return;
    }
    // Stored with the write itself: nothing left to do.
    if (claim.recordedStatus === status) return;
    const headers: Record<string, string> = {};
    for (const name of STORED_HEADERS) {
      const value = res.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    // What Express's send() hands to end(): a Buffer, or a string (UTF-8).
    const body = Buffer.isBuffer(chunk)
      ? chunk
      : typeof chunk === "string"
        ? Buffer.from(chunk)
        : Buffer.alloc(0);
    const response = sealAnswer(claim, headers, body);
    // A deferred claim whose transaction did not commit (the handler answered before it, or
    // refused in it): the answer is the claim.
    const isStored = claim.isClaimed
      ? await answerIdempotencyKey(deps.db, { ...claim, status, response })
      : await storeIdempotentAnswer(deps.db, { ...claim.row, status, response });
    if (!isStored) {
      deps.logger.warn(
        { status, recordedStatus: claim.recordedStatus },
        claim.recordedStatus === null
          ? "an idempotency claim was taken over before its answer"
          : "an idempotent answer recorded in its transaction differs from the one sent",
      );
    }
  }

  /** Holds the response until `settle` stored or released the claim. */
  function interceptEnd(claim: Claim, res: Response): void {
    const end = res.end.bind(res) as (...args: unknown[]) => Response;
    res.end = ((...args: unknown[]) => {
      res.end = end as Response["end"];
      const chunk = typeof args[0] === "function" ? undefined : args[0];
      settle(claim, res, chunk)
        .catch((error: unknown) => {
          deps.logger.error({ err: error }, "could not store or release an idempotency key");
        })
        .finally(() => end(...args));
      return res;
    }) as Response["end"];
  }

  function replay(res: Response, claim: Claim, status: number, stored: Buffer): void {
    const answer = openAnswer(claim, stored);
    res.status(status);
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
    res.setHeader(REPLAYED_HEADER, "true");
    if (answer.body.length === 0) res.end();
    else res.send(answer.body);
  }

  /** The request's claim (not yet made), or null when it has no key (or no organization). */
  function prepareClaim(req: Request): Claim | null {
    const key = req.get(IDEMPOTENCY_KEY_HEADER);
    if (key === undefined) return null;
    if (!KEY_PATTERN.test(key)) {
      throw new BadRequestError(
        "Idempotency-Key must be 1 to 255 printable ASCII characters (a UUID, say)",
        { code: "INVALID_IDEMPOTENCY_KEY", details: { length: key.length } },
      );
    }
    // Keys belong to the caller's organization (their table's key); a platform admin's session
    // without one (the console's) keeps its keys to that admin: the user's id stands for the
    // organization (random UUIDs both, and the table has no foreign key).
    const organizationId = req.auth.organizationId ?? req.auth.userId;
    if (organizationId === null) return null;
    const keyHash = sha256("key", organizationId, key);
    const ownerId = randomUUID();
    const now = deps.clock.now();
    return {
      organizationId,
      keyHash,
      ownerId,
      secret: answerSecret(key, organizationId),
      key,
      hasHandlerStarted: false,
      recordedStatus: null,
      row: {
        organizationId,
        keyHash,
        ownerId,
        fingerprint: requestFingerprint(req.method, req.originalUrl, req.body),
        method: req.method,
        path: req.originalUrl,
        now,
        lockedUntil: new Date(now.getTime() + deps.lockMs),
        expiresAt: new Date(now.getTime() + deps.keyTtlMs),
      },
      isClaimed: false,
      isLost: false,
    };
  }

  /**
   * Answers a request whose key another request claimed or answered: 422 for another request,
   * the stored answer, or 409 while the first runs. False when the key is free again (the other
   * claim was released meanwhile): the caller claims again.
   */
  async function answerRepeat(claim: Claim, res: Response): Promise<boolean> {
    const stored = await findIdempotencyKey(deps.db, claim);
    if (!stored) return false;
    if (!Buffer.from(stored.fingerprint).equals(claim.row.fingerprint)) {
      throw new UnprocessableContentError(
        "This Idempotency-Key was used for another request; send a new key for a new request",
        {
          code: "IDEMPOTENCY_KEY_REUSED",
          details: { firstRequest: { method: stored.method, path: stored.path } },
        },
      );
    }
    if (stored.responseStatus !== null && stored.response !== null) {
      replay(res, claim, stored.responseStatus, Buffer.from(stored.response));
      return true;
    }
    throw leases.inUseError(stored.lockedUntil);
  }

  const step: RequestHandler = async (req, res, next) => {
    const claim = prepareClaim(req);
    if (!claim) {
      next();
      return;
    }
    // A claim released between our INSERT and SELECT is claimed again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = deps.clock.now();
      claim.row = {
        ...claim.row,
        now,
        lockedUntil: new Date(now.getTime() + deps.lockMs),
        expiresAt: new Date(now.getTime() + deps.keyTtlMs),
      };
      if (await claimIdempotencyKey(deps.db, claim.row)) {
        claim.isClaimed = true;
        claim.stopRenewing = leases.renewWhileRunning(claim);
        claims.set(req, claim);
        interceptEnd(claim, res);
        next();
        return;
      }
      if (await answerRepeat(claim, res)) return;
    }
    throw new IdempotencyKeyInUseError();
  };

  const deferredStep: RequestHandler = (req, res, next) => {
    const claim = prepareClaim(req);
    if (claim) {
      claims.set(req, claim);
      interceptEnd(claim, res);
    }
    next();
  };

  return {
    step,
    deferredStep,
    async answerLostClaim(req, res) {
      const claim = claims.get(req);
      if (!claim) throw new IdempotencyKeyInUseError();
      claim.isLost = true;
      // The other claim may be gone already (its request refused): this one runs for real then
      // next time; this time it answers as a repeat of a running request.
      if (!(await answerRepeat(claim, res))) throw new IdempotencyKeyInUseError();
    },
    handlerStarts(req) {
      const claim = claims.get(req);
      if (!claim) return UNKEYED;
      claim.hasHandlerStarted = true;
      return {
        isKeyed: true,
        recordedJson: (status) =>
          claim.recordedStatus === status ? claim.recordedJson : undefined,
        refuse() {
          claim.hasHandlerStarted = false;
        },
        recordInTransaction<T>(answerOf: (result: T) => IdempotentAnswer): TransactionBracket<T> {
          const sealed = (result: T): { status: number; response: Buffer } => {
            const answer = answerOf(result);
            const [headers, body] = answerParts(answer);
            claim.recordedStatus = answer.status;
            claim.recordedJson = answer.body === undefined ? undefined : body;
            return { status: answer.status, response: sealAnswer(claim, headers, body) };
          };
          // The step's claim: its row is answered.
          if (claim.isClaimed) {
            return { lastStatement: (result) => answerStatement({ ...claim, ...sealed(result) }) };
          }
          // A deferred claim: made with this transaction's BEGIN, its row written with COMMIT.
          return {
            firstStatement: claimInTransactionStatement(claim.row),
            lastStatement: (result) =>
              answerInTransactionStatement({ ...claim.row, ...sealed(result) }),
          };
        },
      };
    },
  };
}
