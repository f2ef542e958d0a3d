import express, { type Express } from "express";
import helmet from "helmet";
import { pinoHttp } from "pino-http";
import type { AppContext } from "./context";
import { errorHandler, notFoundHandler } from "./middleware/errorHandler";
import { httpMetrics } from "./middleware/httpMetrics";
import { requestId } from "./middleware/requestId";
import { createDocsRouter } from "./routes/docs";
import { createHealthRouter } from "./routes/health";
import { createApiRouter, type ApiRouterOptions } from "./routes";
import { createWebhooksRouter } from "./routes/webhooks";
import {
  createDefaultWebhookRegistry,
  createWebhookProcessor,
  type WebhookRegistry,
} from "./webhooks";

export interface AppOptions extends ApiRouterOptions {
  /** The webhook handlers of this app (default: `createDefaultWebhookRegistry()`). */
  webhooks?: WebhookRegistry;
}

/** Builds the Express app from its context. Does not listen: `server.ts` and tests do. */
export function createApp(ctx: AppContext, options: AppOptions = {}): Express {
  const app = express();
  app.disable("x-powered-by");
  // Which hop's address is the client's: nobody's but the socket peer unless configured.
  app.set("trust proxy", ctx.config.TRUST_PROXY);

  app.use(requestId);
  app.use(
    pinoHttp({
      logger: ctx.logger,
      genReqId: (req) => (req as express.Request).requestId,
      autoLogging: { ignore: (req) => req.url === "/health" || req.url === "/metrics" },
      customLogLevel: (_req, res, error) =>
        error || res.statusCode >= 500 ? "error" : res.statusCode >= 400 ? "info" : "debug",
    }),
  );
  app.use(httpMetrics(ctx.metrics));

  // Helmet's default CSP allows the docs page: its scripts and styles are served from here.
  app.use(helmet());
  app.use(createDocsRouter());

  app.get("/metrics", async (_req, res) => {
    res.setHeader("Content-Type", ctx.metrics.registry.contentType);
    res.send(await ctx.metrics.registry.metrics());
  });
  app.use(createHealthRouter(ctx));

  // Webhook routes (raw bodies, signature checks) are mounted before the JSON parser.
  const webhooks = createWebhookProcessor(ctx, options.webhooks ?? createDefaultWebhookRegistry());
  app.use("/webhooks", createWebhooksRouter(ctx, webhooks));
  // Shutdown and tests wait on it: `await app.locals.webhooks.idle()` (after-commit tasks).
  app.locals.webhooks = webhooks;

  app.use(
    "/api/v1",
    express.json({ limit: ctx.config.JSON_BODY_LIMIT }),
    createApiRouter(ctx, options),
  );

  app.use(notFoundHandler);
  app.use(errorHandler(ctx.logger));
  return app;
}
