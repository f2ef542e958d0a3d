import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { Metrics } from "../lib/metrics";
import type { RouteResolver } from "./routeTemplate";

/**
 * Observes every request's duration under its route template (`/api/v1/meetings/:id`), never
 * the raw path, so label cardinality stays bounded; unmatched paths share one label. The
 * histogram's child of each (method, route, status) is looked up once and kept: a bounded set,
 * for the same reason.
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
      observerOf(req.method, routeOf(req), res.statusCode)((performance.now() - startedAt) / 1000);
    });
    next();
  };
}
