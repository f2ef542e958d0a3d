import { Router } from "express";
import type { AppContext } from "../context";
import { openApiRegistry, z } from "../openapi/registry";
import { API_VERSION } from "../version";

const DependencyState = z.object({
  status: z.enum(["up", "down", "not_configured"]),
  latencyMs: z.number().optional(),
  error: z.string().optional(),
});

export const HealthSchema = z
  .object({
    status: z.enum(["ok", "degraded", "unavailable"]),
    version: z.string(),
    uptimeSeconds: z.number(),
    checks: z.object({ database: DependencyState, redis: DependencyState }),
  })
  .openapi("Health");

openApiRegistry.registerPath({
  method: "get",
  path: "/health",
  summary: "Liveness and dependency state",
  description: "200 while the database answers (Redis down only degrades); 503 when it does not.",
  responses: {
    200: { description: "Serving", content: { "application/json": { schema: HealthSchema } } },
    503: {
      description: "Database unreachable",
      content: { "application/json": { schema: HealthSchema } },
    },
  },
});

type DependencyState = z.infer<typeof DependencyState>;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function probe(check: () => Promise<unknown>): Promise<DependencyState> {
  const started = performance.now();
  try {
    await withTimeout(check(), 2_000);
    return { status: "up", latencyMs: Math.round((performance.now() - started) * 10) / 10 };
  } catch (error) {
    // The reason helps operators; it carries no credentials (connection strings are not in it).
    return {
      status: "down",
      error: error instanceof Error ? error.message.split("\n")[0] : "unknown",
    };
  }
}

export function createHealthRouter(ctx: AppContext): Router {
  const router = Router();
  const startedAt = Date.now();

  router.get("/health", async (_req, res) => {
    const [database, redis] = await Promise.all([
      probe(() => ctx.db.$queryRaw`SELECT 1`),
      ctx.redis
        ? probe(() => ctx.redis!.ping())
        : Promise.resolve<DependencyState>({ status: "not_configured" }),
    ]);
    const status =
      database.status !== "up" ? "unavailable" : redis.status === "down" ? "degraded" : "ok";
    res.status(status === "unavailable" ? 503 : 200).json({
      status,
      version: API_VERSION,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      checks: { database, redis },
    });
  });

  return router;
}
