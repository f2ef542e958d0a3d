import {
  extendZodWithOpenApi,
  OpenAPIRegistry,
  OpenApiGeneratorV3,
} from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

extendZodWithOpenApi(z);

/**
 * Every route registers its request and response schemas here (at module load, next to its
 * zod schemas), and `/openapi.json` is generated from it, so the document cannot drift from
 * what the handlers validate.
 */
export const openApiRegistry = new OpenAPIRegistry();

export const bearerAuth = openApiRegistry.registerComponent("securitySchemes", "bearerAuth", {
  type: "http",
  scheme: "bearer",
  description: "A Clerk session JWT, or an API key (`zn_...`).",
});

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "CONFLICT" }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
    requestId: z.string(),
  })
  .openapi("ErrorBody");
openApiRegistry.register("ErrorBody", ErrorBodySchema);

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

/** The OpenAPI 3 document of everything registered so far. */
export function buildOpenApiDocument(
  version: string,
): ReturnType<OpenApiGeneratorV3["generateDocument"]> {
  const generator = new OpenApiGeneratorV3(openApiRegistry.definitions);
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
