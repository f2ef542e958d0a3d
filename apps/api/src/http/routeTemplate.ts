import type { Request } from "express";

/** The one `route` value of every request that reached no route (metrics label, log field). */
export const UNMATCHED_ROUTE = "unmatched";

/** Names the route template a finished request was for; see `createRouteResolver`. */
export type RouteResolver = (req: Request) => string;

/** `/api/v1/meetings/:id` as Express matches it: any one segment per parameter, case-insensitive, optional trailing slash. */
function toPattern(path: string): RegExp {
  const source = path
    .split(/(:[A-Za-z0-9_]+)/)
    .map((part) => (part.startsWith(":") ? "[^/]+" : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("");
  return new RegExp(`^${source}/?$`, "i");
}

/**
 * The template of the route a request was for (`/api/v1/meetings/:id/recording`), never its raw
 * path, so metrics labels and log fields stay a bounded set: the route Express matched, else the
 * declared route the path and method fit (a body the JSON parser refused never reached its
 * route, yet it was for that route), else `unmatched`.
 */
export function createRouteResolver(
  declared: readonly { method: string; path: string }[],
): RouteResolver {
  const routes = declared.map((route) => ({
    method: route.method.toUpperCase(),
    path: route.path,
    pattern: toPattern(route.path),
  }));
  return (req) => {
    const matched = (req.route as { path?: unknown } | undefined)?.path;
    if (typeof matched === "string") return `${req.baseUrl}${matched}`;
    const method = req.method === "HEAD" ? "GET" : req.method;
    const path = req.originalUrl.split("?")[0] ?? "";
    const route = routes.find((r) => r.method === method && r.pattern.test(path));
    return route?.path ?? UNMATCHED_ROUTE;
  };
}
