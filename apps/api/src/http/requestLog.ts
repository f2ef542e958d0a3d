import { PROVIDER_NOT_CONFIGURED } from "@zigznote/shared";
import type { Request, RequestHandler, Response } from "express";
import type { IncomingMessage, ServerResponse } from "node:http";
import { pinoHttp } from "pino-http";
import type { Logger } from "../lib/logger";
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
    fields.organizationId = auth.organizationId;
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

/**
 * One short line per request (`request completed`): request id, method, route template,
 * status, duration, the caller's organization and user or API key, and the error code. No
 * headers: the security headers of every answer are the same, and request headers carry
 * credentials.
 */
export function requestLog(logger: Logger, routeOf: RouteResolver): RequestHandler {
  const asExpress = (req: IncomingMessage, res: ServerResponse) => ({
    req: req as Request,
    res: res as Response,
  });
  return pinoHttp({
    logger,
    genReqId: (req) => (req as Request).requestId,
    customAttributeKeys: { reqId: "requestId" },
    // The request id is bound once; neither the request nor the response object is logged.
    quietReqLogger: true,
    quietResLogger: true,
    autoLogging: { ignore: (req) => req.url === "/health" || req.url === "/metrics" },
    customLogLevel: (_req, res, error) => levelOf(res as Response, error),
    customSuccessObject: (req, res, val: { responseTime: number }) => {
      const e = asExpress(req, res);
      return fieldsOf(e.req, e.res, val.responseTime, routeOf);
    },
    customErrorObject: (req, res, _error, val: { responseTime: number }) => {
      const e = asExpress(req, res);
      return fieldsOf(e.req, e.res, val.responseTime, routeOf);
    },
    customSuccessMessage: () => "request completed",
    customErrorMessage: () => "request failed",
  });
}
