/* eslint-disable max-lines -- one route declaration from its types to its mounting and its OpenAPI entry: the typed answer, the guards chain and the document are read together when a route changes */
import type { ResponseConfig, RouteConfig, ZodRequestBody } from "@asteasolutions/zod-to-openapi";
import {
  httpError,
  isAppError,
  isTransientCode,
  statusesOf,
  UnsupportedMediaTypeError,
  type ErrorCode,
} from "@zigznote/shared";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Request, RequestHandler, Response, Router } from "express";
import { z } from "zod";
import {
  requirePlatformAdmin,
  requireRole,
  requireOrganization,
  requireScope,
  type AuthContext,
  type OrgAuthContext,
  type RouteGuard,
} from "./auth";
import {
  isClaimLost,
  IDEMPOTENCY_KEY_HEADER,
  isIdempotentWrite,
  REPLAYED_HEADER,
  UNKEYED,
  type Idempotency,
  type IdempotentAnswer,
  type IdempotencyKernel,
} from "./idempotency";
import { BEARER_AUTH, errorResponse, type ErrorBodyExample } from "./openapi";
import type { Scope } from "./scopes";
import { validate } from "./validate";

/**
 * Routes are declared once: `defineRoute({...})` is both what `mountRoutes` puts on the router
 * (authentication, scope/role, billing's write guard, validation, handler, in that order) and
 * what `buildOpenApiDocument` describes. The path is written in Express syntax
 * (`/api/v1/meetings/:id`) and converted for the document (`{id}`).
 */

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

type Schema = z.ZodType | undefined;
type Parsed<T extends Schema> = T extends z.ZodType ? z.output<T> : undefined;

/**
 * `"session"`: any caller with credentials, acting within their organization (403
 * `NO_ACTIVE_ORGANIZATION` for a session without one); `"withoutOrganization"`: a caller with
 * credentials whose organization, if any, does not matter (the platform admins' console);
 * `"none"`: public (health, docs, webhooks).
 */
export type RouteAuth = "session" | "withoutOrganization" | "none";

/** The caller a handler sees: with an organization exactly where the route acts within one. */
export type RouteCaller<A extends RouteAuth> = A extends "none"
  ? null
  : A extends "session"
    ? OrgAuthContext
    : AuthContext;

/** What a handler receives: the parsed request parts and, on authenticated routes, the caller. */
export interface RouteInput<
  P extends Schema,
  Q extends Schema,
  B extends Schema,
  A extends RouteAuth,
> {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
  auth: RouteCaller<A>;
  /**
   * The request's Idempotency-Key claim (writes under /api/v1): a route whose service writes in
   * one transaction records its answer there with `recordInTransaction`.
   */
  idempotency: Idempotency;
}

export interface RouteResponse {
  description: string;
  /** JSON body schema; omit for an empty response. */
  schema?: z.ZodType;
  /** Non-JSON bodies (a recording download, say). */
  content?: ResponseConfig["content"];
  headers?: ResponseConfig["headers"];
}

/** A route's success responses by status. */
export type RouteResponses = Record<number, RouteResponse>;

type AnswerHeaders = Record<string, string>;

/** The zod schema of a response's JSON body: `schema`, or the `application/json` of `content`. */
type JsonSchemaOf<R> = R extends { schema: infer Z extends z.ZodType }
  ? Z
  : R extends { content: { "application/json": { schema: infer Z extends z.ZodType } } }
    ? Z
    : never;

/**
 * A body as the schema's type `T` reads once `res.json` has serialized it: a `Date` where a
 * string is declared (it leaves as its ISO string), read-only arrays, and any string where the
 * schema lists some (the suite's response check holds answers to the exact values). Field names,
 * nesting, nullability, numbers and booleans are checked as declared.
 */
export type WireBody<T> = T extends string
  ? string | Date
  : T extends readonly (infer E)[]
    ? readonly WireBody<E>[]
    : T extends Date
      ? T
      : T extends object
        ? { [K in keyof T]: WireBody<T[K]> }
        : T;

/** The JSON body a handler answers with status `S` of `responses` `R` (as `RouteAnswer` types it). */
export type AnswerBody<R extends RouteResponses, S extends keyof R & number> = WireBody<
  z.output<JsonSchemaOf<R[S]>>
>;

/**
 * What a handler may answer with status `S` of response `R`: its JSON body (the schema's type),
 * a stream where the response declares non-JSON `content` (a recording's bytes), or nothing
 * (204, 304; a `redirect` sets `Location`, for a 302).
 */
type AnswerFor<S extends number, R> =
  | ([JsonSchemaOf<R>] extends [never]
      ? never
      : { status: S; body: WireBody<z.output<JsonSchemaOf<R>>>; headers?: AnswerHeaders })
  | (R extends { content: object }
      ? {
          status: S;
          /** Piped to the client after the headers. */
          stream: Readable;
          headers?: AnswerHeaders;
          /** The stream failed after the headers left: the client sees a cut-off body. */
          onInterrupted?: (error: unknown) => void;
        }
      : never)
  | (R extends { schema: z.ZodType } | { content: object }
      ? never
      : { status: S; body?: undefined; redirect?: string; headers?: AnswerHeaders });

/**
 * The statuses a route may declare as an answer. Besides naming them, the union keeps a
 * handler's `status: 201` a literal while `responses` is still being inferred (a handler typed
 * only by `RouteAnswer<R>` would see `number`).
 */
export type AnswerStatus =
  200 | 201 | 202 | 203 | 204 | 205 | 206 | 301 | 302 | 303 | 304 | 307 | 308 | 503;

/**
 * What a handler returns: one of the statuses its declaration lists, with what that status
 * declares. The kernel sends it, so the compiler checks every answer against `responses`.
 */
export type RouteAnswer<R extends RouteResponses> = {
  [S in keyof R & number]: AnswerFor<S, R[S]>;
}[keyof R & number];

/** `RouteAnswer` as a handler returns it (see `AnswerStatus`). */
type Answer<R extends RouteResponses> = RouteAnswer<R> & { status: AnswerStatus };

export interface RouteSpec<
  P extends Schema,
  Q extends Schema,
  B extends Schema,
  A extends RouteAuth,
  R extends RouteResponses = RouteResponses,
> {
  method: HttpMethod;
  /** Express syntax: `/api/v1/meetings/:id/bot`. */
  path: string;
  /** Unique, camelCase (`createMeeting`): what generated clients name the call. */
  operationId: string;
  summary: string;
  description?: string;
  /** Groups the operation in the document (one per feature). */
  tag: string;
  /** Default `"session"`: the caller must authenticate and act for an organization. */
  auth?: A;
  /** The scope the caller must hold (keys hold it explicitly, users by role). */
  scope?: Scope;
  /**
   * `admin`: the organization's admins' sessions only; `platformAdmin`: zigznote's operators'
   * sessions only (`/api/v1/admin`). Never API keys.
   */
  role?: "admin" | "platformAdmin";
  /**
   * The guard of the write (billing's, from the route factory's `WriteGuards`: 402 while
   * suspended, 403 at a plan limit): its `check` runs before the handler, unless the feature
   * decides in the write's transaction (the service calls the `WriteGuard` there). Either way
   * the codes the guard registered are documented.
   */
  write?: RouteGuard;
  params?: P;
  query?: Q;
  body?: B;
  /** The body may be omitted (it then parses as `{}`). */
  isBodyOptional?: boolean;
  /** A body that is not JSON (a recording upload): documented only, the handler reads it. */
  rawBody?: ZodRequestBody;
  /** Request headers the handler reads (`Range`, `If-None-Match`): documented only. */
  headers?: z.ZodObject;
  /** Success responses by status: what the handler's answer is checked against. */
  responses: R;
  /**
   * The error codes the handler (and the services it calls) can answer, besides those the
   * declaration implies (see `impliedCodes`: validation with a schema, authentication, scope,
   * role and write guard, body reading, 500 and 503 always). Each code's status comes from
   * `ERROR_CODES`; the document lists the codes per status, and the test suite fails on a
   * response whose code is not listed.
   */
  errors?: readonly ErrorCode[];
  /** The document's example of an error code where the general one (`errorExamples.ts`) misleads. */
  errorExamples?: Partial<Record<ErrorCode, ErrorBodyExample>>;
  /**
   * The write's effects are all in one transaction, which no guard precedes (billing decides in
   * it): an Idempotency-Key is claimed at that transaction's BEGIN rather than in a round trip
   * of its own (http/idempotency.ts). The handler must pass `recordInTransaction`'s bracket to it.
   */
  claimsKeyInTransaction?: boolean;
  /** Runs before validation (raw body parsers, say). */
  before?: RequestHandler[];
  /**
   * Answers the request; the kernel sends what it returns. `req` is for reading a body that is
   * not JSON (`rawBody`, a webhook's bytes) and the declared `headers`; the answer never goes
   * through it.
   */
  handler(input: RouteInput<P, Q, B, A>, req: Request): Promise<Answer<R>> | Answer<R>;
}

/**
 * What the app's guards answer on the routes they guard, for the document: the kernel knows no
 * feature's codes, so the composition root hands in identity's (authentication).
 */
export interface RouteDocumentation {
  authenticationCodes: readonly ErrorCode[];
}

/** A declared route: what to mount and what to document. */
export interface RouteDefinition {
  method: HttpMethod;
  path: string;
  /** The route's OpenAPI operation, with what the app's guards add (`documentation`). */
  operation(documentation: RouteDocumentation): RouteConfig;
  /** Builds the Express handlers given the app's authentication, write guard and body parser. */
  handlers(mounting: RouteMounting): RequestHandler[];
}

export interface RouteGuards {
  authenticate: RequestHandler;
}

/** What `mountRoutes` needs besides the guards. */
export interface RouteMounting extends RouteGuards {
  /**
   * Reads a JSON body (within the app's size limit). Only routes that declare a `body` read one:
   * the others ignore what a client sends, so they never answer 400 or 413 about it.
   */
  parseJsonBody: RequestHandler;
  /** The app's Idempotency-Key handling (http/idempotency.ts). */
  idempotency: IdempotencyKernel;
  /**
   * Counts a request a known path refuses for its method (405) before it is answered: the API's
   * address budget (http/rateLimit.ts), as for a path no route has. Absent: not counted.
   */
  countRefusedMethod?: RequestHandler;
}

/** A `Location` response header in the document (where a created resource is read). */
export const LOCATION_HEADER = {
  description: "The created resource's URL",
  schema: { type: "string" as const },
};

/** Any handler's answer, as the kernel sends it. */
type SentAnswer = IdempotentAnswer & {
  stream?: Readable;
  redirect?: string;
  onInterrupted?: (error: unknown) => void;
};

/**
 * Sends a handler's answer: JSON, nothing, a redirect or a stream. `json`: its body as JSON
 * already (what an idempotent write recorded in its transaction: the same answer, not
 * serialized twice).
 */
async function send(res: Response, answer: SentAnswer, json?: Buffer): Promise<void> {
  res.status(answer.status);
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  if (answer.redirect !== undefined) res.setHeader("Location", answer.redirect);
  if (answer.stream) {
    try {
      await pipeline(answer.stream, res);
    } catch (error) {
      if (!answer.onInterrupted) throw error;
      answer.onInterrupted(error);
    }
  } else if (answer.body === undefined) res.end();
  else if (json) res.setHeader("Content-Type", "application/json; charset=utf-8").send(json);
  else res.json(answer.body);
}

/** `/a/:id/b` -> `/a/{id}/b`. */
function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

type LooseSpec = RouteSpec<Schema, Schema, Schema, RouteAuth, RouteResponses>;

/** Whether the route takes an Idempotency-Key: an authenticated POST, PATCH or DELETE of /api/v1. */
function isKeyedRoute(spec: LooseSpec): boolean {
  return (spec.auth ?? "session") !== "none" && isIdempotentWrite(spec.method, spec.path);
}

/** What every answer of an authenticated operation carries (but a platform admin's). */
const RATE_LIMIT_HEADERS = {
  "RateLimit-Policy": {
    description:
      'The request budget (IETF RateLimit fields): `"organization";q=<requests>;w=60` per ' +
      'organization and minute, by plan; `"address";q=<requests>;w=60` when authentication failed',
    schema: { type: "string" as const },
  },
  RateLimit: {
    description:
      'What is left of it: `"organization";r=<remaining>;t=<seconds until the window resets>`',
    schema: { type: "string" as const },
  },
};

/** What every 401 of an authenticated operation carries (identity/authenticate.ts). */
const WWW_AUTHENTICATE_HEADER = {
  description:
    'The challenge: `Bearer realm="zigznote"`, with `error="invalid_token"` when the request ' +
    "sent an Authorization header that was refused",
  schema: { type: "string" as const },
  required: true,
};

/** The request header of every keyed route. */
const IdempotencyKeyHeaders = z.object({
  [IDEMPOTENCY_KEY_HEADER]: z
    .string()
    .min(1)
    .max(255)
    .optional()
    .openapi({
      description:
        "Makes the write safe to retry: a repeat with the same key and the same request gets " +
        `the first answer again (with \`${REPLAYED_HEADER}: true\`) for 24 h. 1-255 printable ` +
        "ASCII characters; a fresh UUID per logical request. See the guide's Retries.",
      example: "5f0c7e1e-3b8a-4d7e-9a55-0c2a4f3f1b6d",
    }),
});

/** What a replayed answer of a keyed route carries, success or refusal. */
const REPLAYED_HEADERS = {
  [REPLAYED_HEADER]: {
    description: `\`true\` when this is the stored answer of an earlier request with the same ${IDEMPOTENCY_KEY_HEADER}`,
    schema: { type: "string" as const, enum: ["true"] },
  },
};

/**
 * The error statuses of a keyed route whose answers are stored and replayed: those of a refusal
 * in the handler or its transaction (`http/idempotency.ts`), neither 400, nor the write guard's
 * refusals, nor a refusal that holds only for now. The guards before the handler (credentials,
 * scope, rate limit, the key's own 409 and 422) are never stored.
 */
function replayedErrorStatuses(spec: LooseSpec): Set<number> {
  const statuses = new Set<number>();
  if (!isKeyedRoute(spec)) return statuses;
  const refusals = new Set<ErrorCode>(spec.write?.refusals);
  for (const code of [...(spec.errors ?? []), ...(spec.write?.codes ?? [])]) {
    if (refusals.has(code) || isTransientCode(code)) continue;
    for (const status of statusesOf(code)) {
      if (status > 400 && status < 500) statuses.add(status);
    }
  }
  return statuses;
}

/** The codes a route can answer because of what it declares, besides its handler's own. */
function impliedCodes(spec: LooseSpec, documentation: RouteDocumentation): ErrorCode[] {
  // Anything unforeseen, and a database that does not answer.
  const codes: ErrorCode[] = ["INTERNAL_ERROR", "DATABASE_UNAVAILABLE"];
  if (spec.params) codes.push("INVALID_URL_ENCODING");
  if (spec.params || spec.query || spec.body) codes.push("VALIDATION_ERROR");
  if (spec.body) {
    codes.push("INVALID_JSON", "BAD_REQUEST", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE");
  }
  if ((spec.auth ?? "session") !== "none")
    codes.push(...documentation.authenticationCodes, "RATE_LIMITED");
  if (spec.role === "admin") codes.push("ADMIN_REQUIRED");
  if (spec.role === "platformAdmin") codes.push("PLATFORM_ADMIN_REQUIRED");
  // A cookie-authenticated write from an origin that is not allowed.
  if ((spec.auth ?? "session") !== "none" && spec.method !== "get") {
    codes.push("CSRF_ORIGIN_REFUSED");
  }
  if (spec.scope) codes.push("INSUFFICIENT_SCOPE");
  if (spec.write) codes.push(...spec.write.codes);
  if (isKeyedRoute(spec)) {
    codes.push("INVALID_IDEMPOTENCY_KEY", "IDEMPOTENCY_KEY_IN_USE", "IDEMPOTENCY_KEY_REUSED");
  }
  return codes;
}

/** Every code the route can answer, by status, each code once. */
export function errorCodesByStatus(
  spec: LooseSpec,
  documentation: RouteDocumentation,
): Map<number, ErrorCode[]> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...impliedCodes(spec, documentation), ...(spec.errors ?? [])])) {
    for (const status of statusesOf(code)) {
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

/** How a caller gets in, in words, for the operation's description. */
function accessNote(spec: LooseSpec): string | undefined {
  if ((spec.auth ?? "session") === "none") return undefined;
  const parts: string[] = [];
  if (spec.role === "admin") {
    parts.push(
      "Organization admins' session tokens only; API keys are refused (`ADMIN_REQUIRED`).",
    );
  }
  if (spec.role === "platformAdmin") {
    parts.push(
      "Platform admins' session tokens only (zigznote's operators, not an organization's " +
        "admins); API keys are refused (`PLATFORM_ADMIN_REQUIRED`).",
    );
  }
  if (spec.scope) {
    parts.push(
      `Requires the \`${spec.scope}\` scope (API keys hold it explicitly; users by role, see Authentication).`,
    );
  }
  if (spec.write) parts.push(spec.write.note);
  return parts.length > 0 ? parts.join(" ") : "Any authenticated caller.";
}

function describe(spec: LooseSpec, documentation: RouteDocumentation): RouteConfig {
  const responses: RouteConfig["responses"] = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    const content =
      response.content ??
      (response.schema ? { "application/json": { schema: response.schema } } : undefined);
    const headers = { ...response.headers, ...(isKeyedRoute(spec) ? REPLAYED_HEADERS : {}) };
    responses[status] = {
      description: response.description,
      ...(content ? { content } : {}),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }
  const replayedStatuses = replayedErrorStatuses(spec);
  for (const [status, codes] of errorCodesByStatus(spec, documentation)) {
    if (!(status in spec.responses)) {
      const response = errorResponse(status, codes, spec.errorExamples);
      responses[status] = replayedStatuses.has(status)
        ? { ...response, headers: { ...response.headers, ...REPLAYED_HEADERS } }
        : response;
    }
  }
  if ((spec.auth ?? "session") !== "none") {
    for (const [status, response] of Object.entries(responses)) {
      if (!("$ref" in response)) {
        response.headers = {
          ...RATE_LIMIT_HEADERS,
          ...(status === "401" ? { "WWW-Authenticate": WWW_AUTHENTICATE_HEADER } : {}),
          ...response.headers,
        };
      }
    }
  }

  const request: NonNullable<RouteConfig["request"]> = {};
  if (spec.params) request.params = spec.params as NonNullable<typeof request.params>;
  if (spec.query) request.query = spec.query as NonNullable<typeof request.query>;
  if (isKeyedRoute(spec)) {
    request.headers = spec.headers
      ? spec.headers.extend(IdempotencyKeyHeaders.shape)
      : IdempotencyKeyHeaders;
  } else if (spec.headers) {
    request.headers = spec.headers;
  }
  if (spec.body) {
    request.body = {
      ...(spec.isBodyOptional ? { required: false } : {}),
      content: { "application/json": { schema: spec.body } },
    };
  } else if (spec.rawBody) {
    request.body = spec.rawBody;
  }

  const description = [spec.description, accessNote(spec)].filter(Boolean).join("\n\n");
  return {
    method: spec.method,
    path: toOpenApiPath(spec.path),
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    ...(description ? { description } : {}),
    ...((spec.auth ?? "session") !== "none" ? { security: [{ [BEARER_AUTH]: [] }] } : {}),
    ...(spec.scope ? { "x-required-scope": spec.scope } : {}),
    ...(spec.role ? { "x-required-role": spec.role } : {}),
    ...(Object.keys(request).length > 0 ? { request } : {}),
    responses,
  };
}

/** Declares a route: the handler gets typed, validated input. See the module comment. */
export function defineRoute<
  P extends Schema = undefined,
  Q extends Schema = undefined,
  B extends Schema = undefined,
  A extends RouteAuth = "session",
  R extends RouteResponses = RouteResponses,
>(spec: RouteSpec<P, Q, B, A, R>): RouteDefinition {
  const loose = spec as unknown as LooseSpec;
  // Unknown query parameters are refused like unknown body keys (a typo is not ignored).
  const strictQuery = spec.query instanceof z.ZodObject ? spec.query.strict() : spec.query;
  const isAuthenticated = (spec.auth ?? "session") !== "none";
  const isKeyed = isKeyedRoute(loose);
  const guardRefusals: ReadonlySet<ErrorCode> = new Set(spec.write?.refusals);
  return {
    method: spec.method,
    path: spec.path,
    operation: (documentation) => describe(loose, documentation),
    handlers(mounting) {
      const chain: RequestHandler[] = [];
      if (isAuthenticated) chain.push(mounting.authenticate);
      if ((spec.auth ?? "session") === "session") chain.push(requireOrganization);
      if (spec.role === "platformAdmin") chain.push(requirePlatformAdmin);
      else if (spec.role) chain.push(requireRole(spec.role));
      if (spec.scope) chain.push(requireScope(spec.scope));
      // The body is read once the caller is known and counted against its budget: a caller
      // without credentials, or past its budget, gets no JSON parsed for it (up to
      // JSON_BODY_LIMIT each). The Idempotency-Key's fingerprint needs the body.
      if (spec.body) chain.push(mounting.parseJsonBody);
      // Before the write guard: a retry of a write that succeeded is replayed even when billing
      // would now refuse a new one (the first meeting used the plan's last slot, say).
      if (isKeyed) {
        chain.push(
          spec.claimsKeyInTransaction
            ? mounting.idempotency.deferredStep
            : mounting.idempotency.step,
        );
      }
      const check = spec.write?.check;
      if (check) {
        chain.push(async (req, _res, next) => {
          // `write:` routes act within an organization (`requireOrganization` passed).
          await check((req.auth as OrgAuthContext).organizationId);
          next();
        });
      }
      if (spec.body) chain.push(requireJsonBody);
      chain.push(
        ...(spec.before ?? []),
        validate({ params: spec.params, query: strictQuery, body: spec.body }),
      );
      chain.push(async (req, res) => {
        // What `validate` parsed with this route's own schemas: typed by them.
        const parsed = req.valid;
        const input = {
          params: parsed.params,
          query: parsed.query,
          body: parsed.body,
          auth: isAuthenticated ? req.auth : null,
          idempotency: isKeyed ? mounting.idempotency.handlerStarts(req) : UNKEYED,
        } as RouteInput<P, Q, B, A>;
        try {
          const answer = (await spec.handler(input, req)) as SentAnswer;
          await send(res, answer, input.idempotency.recordedJson(answer.status));
        } catch (error) {
          // The key's claim, made in the write's transaction, found another request's.
          if (isClaimLost(error)) {
            await mounting.idempotency.answerLostClaim(req, res);
            return;
          }
          // Billing refused in the write's transaction: not kept, like its refusal before it.
          if (isAppError(error) && guardRefusals.has(error.code)) input.idempotency.refuse();
          throw error;
        }
      });
      return chain;
    },
  };
}

/**
 * A JSON route's body must say it is JSON: without `Content-Type: application/json` the body would
 * be ignored and a confusing field error follow. An empty body (an optional one) passes.
 */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  const hasBody = Number(req.get("content-length") ?? 0) > 0 || req.get("transfer-encoding");
  if (hasBody && !req.is("application/json")) {
    next(
      new UnsupportedMediaTypeError("Send the body as JSON with Content-Type: application/json", {
        details: { contentType: req.get("content-type") ?? null, accepted: ["application/json"] },
      }),
    );
    return;
  }
  next();
};

/**
 * Mounts each route on `router` with the app's guards and body parser; a known path called with
 * another method answers 405 with `Allow`.
 */
export function mountRoutes(
  router: Router,
  routes: readonly RouteDefinition[],
  mounting: RouteMounting,
): void {
  const methodsByPath = new Map<string, HttpMethod[]>();
  for (const route of routes) {
    router[route.method](route.path, ...route.handlers(mounting));
    methodsByPath.set(route.path, [...(methodsByPath.get(route.path) ?? []), route.method]);
  }
  for (const [path, methods] of methodsByPath) {
    router.all(
      path,
      refuseOtherMethods(
        methods.map((method) => method.toUpperCase()),
        mounting.countRefusedMethod,
      ),
    );
  }
}

/**
 * After a path's handlers: 405 with `Allow` for a method the path does not take (`HEAD` goes
 * with `GET`), once `count` (when given) let it through. A method it takes passes on (a static
 * file not found, say: a 404 follows).
 */
export function refuseOtherMethods(
  methods: readonly string[],
  count?: RequestHandler,
): RequestHandler {
  const allow = methods.includes("GET") ? [...methods, "HEAD"] : [...methods];
  return (req, res, next) => {
    if (allow.includes(req.method)) {
      next();
      return;
    }
    res.setHeader("Allow", allow.join(", "));
    const refusal = httpError(
      "METHOD_NOT_ALLOWED",
      `${req.method} is not allowed here; use ${allow.join(", ")}`,
      {
        details: { allowed: allow },
      },
    );
    if (count) void count(req, res, (error?: unknown) => next(error ?? refusal));
    else next(refusal);
  };
}
