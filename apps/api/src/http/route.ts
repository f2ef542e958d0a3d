import type { ResponseConfig, RouteConfig, ZodRequestBody } from "@asteasolutions/zod-to-openapi";
import { AppError, UnsupportedMediaTypeError } from "@zigznote/shared";
import type { Request, RequestHandler, Response, Router } from "express";
import { z } from "zod";
import {
  requirePlatformAdmin,
  requireRole,
  requireScope,
  type AuthContext,
  type WriteAction,
} from "./auth";
import { BEARER_AUTH, errorResponses } from "./openapi";
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

/** `"session"`: any caller with credentials; `"none"`: public (health, docs, webhooks). */
export type RouteAuth = "session" | "none";

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
  auth: A extends "none" ? null : AuthContext;
}

export interface RouteResponse {
  description: string;
  /** JSON body schema; omit for an empty response. */
  schema?: z.ZodType;
  /** Non-JSON bodies (a recording download, say). */
  content?: ResponseConfig["content"];
  headers?: ResponseConfig["headers"];
}

export interface RouteSpec<
  P extends Schema,
  Q extends Schema,
  B extends Schema,
  A extends RouteAuth,
> {
  method: HttpMethod;
  /** Express syntax: `/api/v1/meetings/:id/bot`. */
  path: string;
  summary: string;
  description?: string;
  /** Groups the operation in the document (one per feature). */
  tag: string;
  /** Default `"session"`: the caller must authenticate. */
  auth?: A;
  /** The scope the caller must hold (keys hold it explicitly, users by role). */
  scope?: Scope;
  /**
   * `admin`: the organization's admins' sessions only; `platformAdmin`: zigznote's operators'
   * sessions only (`/api/v1/admin`). Never API keys.
   */
  role?: "admin" | "platformAdmin";
  /** Billing's say before the write (402 while suspended, 403 at a plan limit). */
  write?: WriteAction;
  params?: P;
  query?: Q;
  body?: B;
  /** The body may be omitted (it then parses as `{}`). */
  isBodyOptional?: boolean;
  /** A body that is not JSON (a recording upload): documented only, the handler reads it. */
  rawBody?: ZodRequestBody;
  /** Success responses by status. */
  responses: Record<number, RouteResponse>;
  /**
   * Error statuses besides those the declaration implies (400 with a schema, 401/429 when
   * authenticated, 403 with a scope, role or write guard, 402 with a write guard, 413 and 415 with
   * a body, 500 and 503 always). A status declared in `responses` keeps its own description and schema.
   */
  errors?: number[];
  /** Runs before validation (raw body parsers, say). */
  before?: RequestHandler[];
  handler(input: RouteInput<P, Q, B, A>, res: Response, req: Request): Promise<void> | void;
}

/** A declared route: what to mount and what to document. */
export interface RouteDefinition {
  method: HttpMethod;
  path: string;
  operation: RouteConfig;
  /** Builds the Express handlers given the app's authentication, write guard and body parser. */
  handlers(mounting: RouteMounting): RequestHandler[];
}

export interface RouteGuards {
  authenticate: RequestHandler;
  /** Billing's check of a write: throws 402/403 when the organization may not do `action`. */
  assertCanWrite(organizationId: string, action: WriteAction): Promise<void>;
}

/** What `mountRoutes` needs besides the guards. */
export interface RouteMounting extends RouteGuards {
  /**
   * Reads a JSON body (within the app's size limit). Only routes that declare a `body` read one:
   * the others ignore what a client sends, so they never answer 400 or 413 about it.
   */
  parseJsonBody: RequestHandler;
}

/** `/a/:id/b` -> `/a/{id}/b`. */
function toOpenApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function impliedErrors(spec: RouteSpec<Schema, Schema, Schema, RouteAuth>): number[] {
  // What the error handler may answer on any route: 500 for anything unforeseen, 503 when the
  // database does not answer (DATABASE_UNAVAILABLE).
  const statuses = new Set([...(spec.errors ?? []), 500, 503]);
  const isAuthenticated = (spec.auth ?? "session") === "session";
  if (spec.params || spec.query || spec.body) statuses.add(400);
  if (spec.body) {
    statuses.add(413);
    statuses.add(415);
  }
  if (isAuthenticated) {
    statuses.add(401);
    statuses.add(429);
  }
  // 403 also for a cookie-authenticated write from a refused origin (CSRF_ORIGIN_REFUSED).
  if (spec.scope || spec.role || spec.write) statuses.add(403);
  if (isAuthenticated && spec.method !== "get") statuses.add(403);
  if (spec.write) statuses.add(402);
  return [...statuses].sort((a, b) => a - b);
}

function describe(spec: RouteSpec<Schema, Schema, Schema, RouteAuth>): RouteConfig {
  const responses: RouteConfig["responses"] = {};
  for (const [status, response] of Object.entries(spec.responses)) {
    const content =
      response.content ??
      (response.schema ? { "application/json": { schema: response.schema } } : undefined);
    responses[status] = {
      description: response.description,
      ...(content ? { content } : {}),
      ...(response.headers ? { headers: response.headers } : {}),
    };
  }
  const errors = impliedErrors(spec).filter((status) => !(status in spec.responses));
  Object.assign(responses, errorResponses(...errors));

  const request: NonNullable<RouteConfig["request"]> = {};
  if (spec.params) request.params = spec.params as NonNullable<typeof request.params>;
  if (spec.query) request.query = spec.query as NonNullable<typeof request.query>;
  if (spec.body) {
    request.body = {
      ...(spec.isBodyOptional ? { required: false } : {}),
      content: { "application/json": { schema: spec.body } },
    };
  } else if (spec.rawBody) {
    request.body = spec.rawBody;
  }

  return {
    method: spec.method,
    path: toOpenApiPath(spec.path),
    tags: [spec.tag],
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    ...((spec.auth ?? "session") === "session" ? { security: [{ [BEARER_AUTH]: [] }] } : {}),
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
>(spec: RouteSpec<P, Q, B, A>): RouteDefinition {
  const loose = spec as unknown as RouteSpec<Schema, Schema, Schema, RouteAuth>;
  // Unknown query parameters are refused like unknown body keys (a typo is not ignored).
  const strictQuery = spec.query instanceof z.ZodObject ? spec.query.strict() : spec.query;
  const isAuthenticated = (spec.auth ?? "session") === "session";
  return {
    method: spec.method,
    path: spec.path,
    operation: describe(loose),
    handlers(mounting) {
      const chain: RequestHandler[] = [];
      if (spec.body) chain.push(mounting.parseJsonBody);
      if (isAuthenticated) chain.push(mounting.authenticate);
      if (spec.role === "platformAdmin") chain.push(requirePlatformAdmin);
      else if (spec.role) chain.push(requireRole(spec.role));
      if (spec.scope) chain.push(requireScope(spec.scope));
      const action = spec.write;
      if (action) {
        chain.push(async (req, _res, next) => {
          await mounting.assertCanWrite(req.auth.organizationId, action);
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
        } as RouteInput<P, Q, B, A>;
        await spec.handler(input, res, req);
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
    const allow = methods.map((method) => method.toUpperCase());
    if (allow.includes("GET")) allow.push("HEAD");
    router.all(path, (req, res, next) => {
      res.setHeader("Allow", allow.join(", "));
      next(
        new AppError(405, `${req.method} is not allowed here; use ${allow.join(", ")}`, {
          code: "METHOD_NOT_ALLOWED",
          details: { allowed: allow },
        }),
      );
    });
  }
}
