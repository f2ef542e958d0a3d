import { isSpanContextValid } from "@opentelemetry/api";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { activeSpan } from "../lib/tracing";
import type { RouteResolver } from "./routeTemplate";

/** The response header naming the trace of a request (beside X-Request-Id). */
export const TRACE_ID_HEADER = "Trace-Id";

/**
 * Ties a request to its trace when tracing is on: the response carries `Trace-Id` (what a
 * client quotes to support, as it quotes X-Request-Id), and the server span of the http
 * instrumentation (which continued an incoming `traceparent`) is named by its route template,
 * `GET /api/v1/meetings/:id`, the same template logs and metrics use, never the raw path.
 * With tracing off there is no span: one lookup, then `next()`.
 */
export function traceContext(routeOf: RouteResolver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const span = activeSpan();
    if (span === undefined) {
      next();
      return;
    }
    // Also when the trace is not sampled: the id still joins the caller's logs to ours.
    const spanContext = span.spanContext();
    if (isSpanContextValid(spanContext)) res.setHeader(TRACE_ID_HEADER, spanContext.traceId);
    if (span.isRecording()) {
      // Before the instrumentation ends the span (on "close", which follows "finish").
      res.once("finish", () => {
        const route = routeOf(req);
        span.updateName(`${req.method} ${route}`);
        span.setAttribute("http.route", route);
      });
    }
    next();
  };
}
