import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Metrics } from "../lib/metrics";
import type { RouteResolver } from "./routeTemplate";

/**
 * Observes every request's duration under its route template (`/api/v1/meetings/:id`), never
 * the raw path, so label cardinality stays bounded; unmatched paths share one label.
 */
export function httpMetrics(metrics: Metrics, routeOf: RouteResolver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpRequestDuration.startTimer();
    res.on("finish", () => {
      end({ method: req.method, route: routeOf(req), status_code: String(res.statusCode) });
    });
    next();
  };
}
