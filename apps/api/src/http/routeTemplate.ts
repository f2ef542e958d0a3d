import type { Request } from "express";

/** The one `route` value of every request that reached no route (metrics label, log field). */
export const UNMATCHED_ROUTE = "unmatched";

/** Names the route template a finished request was for. */
export type RouteResolver = (req: Request) => string;

/**
 * The template of the route a request was for (`/api/v1/meetings/:id/recording`), never its raw
 * path, so metrics labels and log fields stay a bounded set: the route Express matched, else
 * `unmatched`. Every declared route parses its own body inside its chain (see `defineRoute`), so
 * a request refused by a guard, a parser or validation has still matched its route.
 */
export const routeOf: RouteResolver = (req) => {
  const matched = (req.route as { path?: unknown } | undefined)?.path;
  return typeof matched === "string" ? `${req.baseUrl}${matched}` : UNMATCHED_ROUTE;
};
