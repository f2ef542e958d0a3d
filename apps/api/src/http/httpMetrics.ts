import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Metrics } from "../lib/metrics";

/**
 * Observes every request's duration under its route pattern (`/api/v1/meetings/:id`), never the
 * raw path, so label cardinality stays bounded; unmatched paths share one label.
 */
export function httpMetrics(metrics: Metrics): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const end = metrics.httpRequestDuration.startTimer();
    res.on("finish", () => {
      const routePath = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof routePath === "string" ? `${req.baseUrl}${routePath}` : "unmatched";
      end({ method: req.method, route, status_code: String(res.statusCode) });
    });
    next();
  };
}
