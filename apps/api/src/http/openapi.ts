import {
  extendZodWithOpenApi,
  OpenAPIRegistry,
  OpenApiGeneratorV3,
  type RouteConfig,
} from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

extendZodWithOpenApi(z);

/** The name of the bearer security scheme every authenticated operation lists. */
export const BEARER_AUTH = "bearerAuth";

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "CONFLICT" }),
      message: z.string(),
      details: z
        .record(z.string(), z.unknown())
        .openapi({ description: "Always present; {} when there is nothing to add" }),
    }),
    requestId: z.string(),
  })
  .openapi("ErrorBody");

/** Standard error responses for a route, by status code. */
export function errorResponses(
  ...statuses: number[]
): Record<
  number,
  { description: string; content: { "application/json": { schema: typeof ErrorBodySchema } } }
> {
  const descriptions: Record<number, string> = {
    400: "Invalid request",
    401: "Missing or invalid credentials",
    402: "Payment required",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Payload too large",
    415: "Unsupported media type",
    416: "Range not satisfiable",
    429: "Too many requests (see Retry-After)",
    500: "Unexpected error",
    502: "Upstream provider failed",
    503: "Service unavailable",
  };
  const responses: Record<
    number,
    { description: string; content: { "application/json": { schema: typeof ErrorBodySchema } } }
  > = {};
  for (const status of statuses) {
    responses[status] = {
      description: descriptions[status] ?? "Error",
      content: { "application/json": { schema: ErrorBodySchema } },
    };
  }
  return responses;
}

export type OpenApiDocument = ReturnType<OpenApiGeneratorV3["generateDocument"]>;

/**
 * The OpenAPI 3 document of `routes`, built from the same declarations that mount them
 * (`defineRoute`), so the document cannot drift from what the handlers validate.
 */
export function buildOpenApiDocument(
  routes: readonly { operation: RouteConfig }[],
  version: string,
): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", BEARER_AUTH, {
    type: "http",
    scheme: "bearer",
    description: "A Clerk session JWT, or an API key (`zn_...`).",
  });
  registry.register("ErrorBody", ErrorBodySchema);
  for (const route of routes) registry.registerPath(route.operation);
  const generator = new OpenApiGeneratorV3(registry.definitions);
  return generator.generateDocument({
    openapi: "3.0.3",
    info: {
      title: "zigznote API",
      version,
      description:
        "Meeting notes: recording bots through Recall.ai, billing through Stripe, sign-in through Clerk and API keys.",
    },
    servers: [{ url: "/" }],
  });
}

export { z };
