import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Metrics } from "../lib/metrics";
import type { RouteResolver } from "./routeTemplate";

/**
 * Observes every request's duration under its route template (`/api/v1/meetings/:id`), never
 * the raw path, so label cardinality stays bounded; unmatched paths share one label. The
 * histogram's child of each (method, route, status) is looked up once and kept: a bounded set,
 * for the same reason. A 429 is also counted with its error code
 * (`zigznote_http_rate_limited_total`: the rate-limiting alert and panel read it).
 */
export function httpMetrics(metrics: Metrics, routeOf: RouteResolver): RequestHandler {
  const histogram = metrics.httpRequestDuration;
  const children = new Map<string, (seconds: number) => void>();
  const observerOf = (method: string, route: string, status: number) => {
    const key = `${method} ${status} ${route}`;
    let observe = children.get(key);
    if (!observe) {
      const child = histogram.labels({ method, route, status_code: String(status) });
      observe = (seconds) => child.observe(seconds);
      children.set(key, observe);
    }
    return observe;
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const startedAt = performance.now();
    res.once("finish", () => {
      const route = routeOf(req);
      observerOf(req.method, route, res.statusCode)((performance.now() - startedAt) / 1000);
      if (res.statusCode === 429) {
        metrics.httpRateLimited.inc({ route, error_code: res.locals.errorCode ?? "none" });
      }
    });
    next();
  };
}
