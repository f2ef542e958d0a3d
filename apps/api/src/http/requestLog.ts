import { PROVIDER_NOT_CONFIGURED } from "@zigznote/shared";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Logger } from "../lib/logger";
import { bindToActiveContext } from "../lib/tracing";
import type { RouteResolver } from "./routeTemplate";

declare module "express-serve-static-core" {
  interface Locals {
    /** The error code of the answer, set by the error handler (logged with the request). */
    errorCode?: string;
  }
}

/** One request's log fields. Nothing the caller sent is copied: no headers, query or body. */
export interface RequestLogFields {
  method: string;
  route: string;
  status: number;
  durationMs: number;
  organizationId?: string;
  userId?: string;
  apiKeyId?: string;
  errorCode?: string;
}

function fieldsOf(req: Request, res: Response, durationMs: number, routeOf: RouteResolver) {
  // `auth` is set by `authenticate`: absent on public routes and on a 401.
  const auth = req.auth as Request["auth"] | undefined;
  const fields: RequestLogFields = {
    method: req.method,
    route: routeOf(req),
    status: res.statusCode,
    durationMs,
  };
  if (auth) {
    if (auth.organizationId) fields.organizationId = auth.organizationId;
    if (auth.userId) fields.userId = auth.userId;
    if (auth.apiKeyId) fields.apiKeyId = auth.apiKeyId;
  }
  if (res.locals.errorCode) fields.errorCode = res.locals.errorCode;
  return fields;
}

/**
 * 5xx at error (the error handler logged the cause), 4xx at info, the rest at debug. A missing
 * provider configuration is the operator's: the error handler's warning says it, so the
 * request's own line stays at info.
 */
function levelOf(res: Response, error: Error | undefined): "error" | "info" | "debug" {
  if (res.locals.errorCode === PROVIDER_NOT_CONFIGURED) return "info";
  if (error || res.statusCode >= 500) return "error";
  return res.statusCode >= 400 ? "info" : "debug";
}

/** Paths polled by probes and scrapers: never logged. */
const UNLOGGED_PATHS = new Set(["/health", "/metrics"]);

/**
 * One short line per request (`request completed`, or `request failed` for a 5xx): request id,
 * method, route template, status, duration, the caller's organization and user or API key, and
 * the error code. No headers: the security headers of every answer are the same, and request
 * headers carry credentials. Written when the response finishes (or the connection closes
 * first); nothing is built for a level the logger does not write, so silent logs cost a check.
 */
export function requestLog(logger: Logger, routeOf: RouteResolver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    // Nothing at all would be written (logs silent): no listeners, no clock.
    if (!logger.isLevelEnabled("error") || UNLOGGED_PATHS.has(req.path)) {
      next();
      return;
    }
    const startedAt = Date.now();
    // Run in the request's context: its trace id is on the line, also when the socket's close
    // (a client gone before its answer) is what ends the request.
    const onDone = bindToActiveContext((error?: Error) => {
      res.off("finish", onDone);
      res.off("close", onDone);
      res.off("error", onDone);
      const level = levelOf(res, error);
      if (!logger.isLevelEnabled(level)) return;
      const fields = fieldsOf(req, res, Date.now() - startedAt, routeOf);
      const isFailure = error !== undefined || res.statusCode >= 500;
      logger[level](
        { requestId: req.requestId, ...fields },
        isFailure ? "request failed" : "request completed",
      );
    });
    res.on("finish", onDone);
    res.on("close", onDone);
    res.on("error", onDone);
    next();
  };
}
