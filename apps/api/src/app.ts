import express, { type Express, type RequestHandler } from "express";
import type { AppContext, AppRoutes } from "./context";
import { errorHandler, notFoundHandler } from "./http/errorHandler";
import { httpMetrics } from "./http/httpMetrics";
import { allowedOriginsCors } from "./http/cors";
import { createIdempotency } from "./http/idempotency";
import { createRateLimiter, type RateLimiter } from "./http/rateLimit";
import { buildOpenApiDocument, type OpenApiDocument } from "./http/openapi";
import { requestId } from "./http/requestId";
import { requestLog } from "./http/requestLog";
import { mountRoutes, refuseOtherMethods, type RouteMounting } from "./http/route";
import { routeOf } from "./http/routeTemplate";
import { securityHeaders } from "./http/securityHeaders";
import { traceContext } from "./http/traceContext";
import { createAdminConsoleRouter, DEFAULT_ADMIN_CONSOLE_DIR } from "./system/adminConsole";
import { createDocsRouter } from "./system/docs";
import { HOUR_MS } from "./lib/time";
import { registerStateMetrics } from "./system/stateMetrics";
import { API_VERSION } from "./version";

export interface AppOptions {
  /**
   * Replaces the app's authentication. For benchmarks that measure what authentication costs
   * against the same routes; the server never sets it.
   */
  authenticate?: RequestHandler;
  /**
   * Leaves out the request's tracing hook (its server span and Trace-Id header). For the
   * benchmark that measures what tracing costs when it is off; the server never sets it.
   */
  isTracingOmitted?: boolean;
  /**
   * How often a keyed request renews its claim, in real time (default: a third of
   * IDEMPOTENCY_LOCK_SECONDS). For tests that move a manual clock past the lease while a request
   * runs; the server never sets it.
   */
  idempotencyRenewalMs?: number;
}

/** The OpenAPI document of `routes` (the context's): what `/openapi.json` serves. */
export function appOpenApiDocument(routes: AppRoutes): OpenApiDocument {
  return buildOpenApiDocument(
    [...routes.health, ...routes.webhooks, ...routes.api],
    API_VERSION,
    routes.documentation,
  );
}

/**
 * The app's request budgets (http/rateLimit.ts): per organization and minute by plan
 * (RATE_LIMIT_PER_MINUTE_*; a plan without its own variable gets the free plan's), platform
 * admins uncounted, per address for failed authentication.
 */
function createAppRateLimiter(ctx: AppContext): RateLimiter {
  const { config } = ctx;
  const budgets: Record<string, number> = {
    free: config.RATE_LIMIT_PER_MINUTE_FREE,
    pro: config.RATE_LIMIT_PER_MINUTE_PRO,
    business: config.RATE_LIMIT_PER_MINUTE_BUSINESS,
  };
  return createRateLimiter({
    redis: ctx.redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    logger: ctx.logger,
    budgetOf: (auth) =>
      auth.isPlatformAdmin === true
        ? null
        : (budgets[auth.planSlug ?? "free"] ?? config.RATE_LIMIT_PER_MINUTE_FREE),
    unauthenticatedBudget: config.RATE_LIMIT_PER_MINUTE_UNAUTHENTICATED,
    maxMemoryKeys: config.API_KEY_LOCKOUT_MAX_ENTRIES,
    onLimited: (subject) => ctx.metrics.rateLimited.inc({ subject }),
    onStoreError: () => ctx.metrics.rateLimitStoreErrors.inc(),
  });
}

/**
 * Builds the Express app from its context: the middleware, then what the context's modules
 * declared (routes, webhook routes), the docs and the admin console. Builds no feature and does
 * not listen: `server.ts` and tests do.
 */
export function createApp(ctx: AppContext, options: AppOptions = {}): Express {
  const app = express();
  app.disable("x-powered-by");
  // No automatic ETag (a hash of every JSON body, and 304s that no operation declares): the
  // routes that support conditional requests (a recording's download) set their own.
  app.set("etag", false);
  // Nor does `res.send` answer 304 by itself (it did for `If-None-Match: *` on any GET).
  Object.defineProperty(app.request, "fresh", { configurable: true, get: () => false });
  // Which hop's address is the client's: nobody's but the socket peer unless configured.
  app.set("trust proxy", ctx.config.TRUST_PROXY);

  const { routes } = ctx;
  const rateLimiter = ctx.config.RATE_LIMIT_ENABLED ? createAppRateLimiter(ctx) : null;
  const authenticate = options.authenticate ?? ctx.routeGuards.authenticate;
  const mounting: RouteMounting = {
    ...ctx.routeGuards,
    authenticate: rateLimiter ? rateLimiter.afterAuthentication(authenticate) : authenticate,
    parseJsonBody: express.json({ limit: ctx.config.JSON_BODY_LIMIT }),
    idempotency: createIdempotency({
      db: ctx.db,
      clock: ctx.clock,
      logger: ctx.logger,
      keyTtlMs: ctx.config.IDEMPOTENCY_KEY_TTL_HOURS * HOUR_MS,
      lockMs: ctx.config.IDEMPOTENCY_LOCK_SECONDS * 1000,
      renewalMs: options.idempotencyRenewalMs,
    }),
  };
  // Metrics and logs name a request by its route template, never its raw path.
  if (!options.isTracingOmitted) app.use(traceContext(routeOf));
  app.use(requestId);
  app.use(requestLog(ctx.logger, routeOf));
  app.use(httpMetrics(ctx.metrics, routeOf));

  // Helmet's default CSP allows the docs page: its scripts and styles are served from here.
  app.use(securityHeaders());

  // The API first: the busiest paths pass no other router on their way (the paths of the
  // routers below are disjoint from /api/v1, so the order changes no answer).
  // A console served from another origin (ADMIN_ALLOWED_ORIGINS) reaches the API from a browser.
  const crossOrigin = allowedOriginsCors(ctx.config.ADMIN_ALLOWED_ORIGINS);
  if (crossOrigin) app.use("/api/", crossOrigin);

  const api = express.Router();
  mountRoutes(api, routes.api, { ...mounting, countRefusedMethod: rateLimiter?.countAddress });
  app.use(api);

  app.use(createDocsRouter(() => appOpenApiDocument(routes)));

  // The root says where things are: a browser goes to the docs, a client reads the links.
  app.get("/", (req, res) => {
    if (req.accepts(["json", "html"]) === "html") {
      res.redirect(302, "/docs");
      return;
    }
    res.json({
      name: "zigznote API",
      version: API_VERSION,
      docs: "/docs",
      openapi: "/openapi.json",
    });
  });

  app.all("/", refuseOtherMethods(["GET"]));

  registerStateMetrics(ctx);
  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  });
  app.all("/metrics", refuseOtherMethods(["GET"]));
  const system = express.Router();
  mountRoutes(system, routes.health, mounting);
  app.use(system);

  // Webhook routes read their raw bodies (signature checks); a JSON body is parsed only by the
  // routes that declare one (`parseJsonBody`).
  const webhooks = express.Router();
  mountRoutes(webhooks, routes.webhooks, mounting);
  app.use(webhooks);

  app.use(
    createAdminConsoleRouter({
      dir: ctx.config.ADMIN_CONSOLE_DIR ?? DEFAULT_ADMIN_CONSOLE_DIR,
      clerkPublishableKey: ctx.config.CLERK_PUBLISHABLE_KEY ?? null,
      isDevelopmentSignIn:
        ctx.config.NODE_ENV !== "production" &&
        !ctx.config.CLERK_JWT_KEY &&
        !ctx.config.CLERK_SECRET_KEY,
    }),
  );

  // A path under /api/v1 that no route has still answers with the address's budget.
  if (rateLimiter) app.use("/api/", rateLimiter.countAddress);
  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}
