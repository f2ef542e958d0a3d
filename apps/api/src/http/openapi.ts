import {
  extendZodWithOpenApi,
  OpenAPIRegistry,
  OpenApiGeneratorV3,
  type ResponseConfig,
  type RouteConfig,
} from "@asteasolutions/zod-to-openapi";
import { ERROR_CODES, type ErrorCode } from "@zigznote/shared";
import { apiGuide } from "./apiGuide";
import { errorExample } from "./errorExamples";
import { z } from "zod";
import type { RouteDocumentation } from "./route";

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
  .openapi("ErrorBody", { example: errorExample("VALIDATION_ERROR") });

const STATUS_TEXT: Record<number, string> = {
  400: "Invalid request",
  401: "Missing or invalid credentials",
  402: "Payment required",
  403: "Not allowed",
  404: "Not found",
  405: "Method not allowed",
  409: "Conflict with the current state",
  422: "Unprocessable request",
  413: "Payload too large",
  415: "Unsupported media type",
  416: "Range not satisfiable",
  429: "Too many requests",
  500: "Unexpected error",
  502: "Upstream provider failed",
  503: "Service unavailable",
};

const RETRY_AFTER = {
  description: "Seconds to wait before retrying",
  schema: { type: "integer" as const, minimum: 1 },
};

/** Headers an error status carries (the error classes' `headers()`). */
const ERROR_HEADERS: Record<number, ResponseConfig["headers"]> = {
  416: {
    "Content-Range": {
      description: "`bytes */<size>`: the recording's size",
      schema: { type: "string" },
    },
  },
  // IDEMPOTENCY_KEY_IN_USE: when to ask again for the running request's answer.
  409: {
    "Retry-After": {
      ...RETRY_AFTER,
      description:
        "With `IDEMPOTENCY_KEY_IN_USE`: 1 while the first request runs (its instance renews its " +
        "claim on the key); when the claim has gone unrenewed for half its lease (the instance " +
        "stopped), the seconds until it lapses and a repeat runs the request",
    },
  },
  429: { "Retry-After": { ...RETRY_AFTER, required: true } },
  503: { "Retry-After": RETRY_AFTER },
};

/** An example error body (see `errorExample`), as an operation may give its own. */
export type ErrorBodyExample = ReturnType<typeof errorExample>;

/**
 * The error response of one status: the shared body shape with `code` limited to `codes`, each
 * code with its meaning in the description, and an example body per code (`errorExamples.ts`,
 * or the operation's own in `examples`).
 */
export function errorResponse(
  status: number,
  codes: readonly ErrorCode[],
  examples: Partial<Record<ErrorCode, ErrorBodyExample>> = {},
): ResponseConfig {
  const [first, ...rest] = codes;
  const schema = z.object({
    error: z.object({
      code: first ? z.enum([first, ...rest]) : z.string(),
      message: z.string(),
      details: z.record(z.string(), z.unknown()),
    }),
    requestId: z.string(),
  });
  const list = codes.map((code) => `- \`${code}\`: ${ERROR_CODES[code].description}`).join("\n");
  return {
    description: `${STATUS_TEXT[status] ?? "Error"}. \`error.code\` is one of:\n\n${list}`,
    content: {
      "application/json": {
        schema,
        examples: Object.fromEntries(
          codes.map((code) => [
            code,
            { summary: code, value: examples[code] ?? errorExample(code) },
          ]),
        ),
      },
    },
    ...(ERROR_HEADERS[status] ? { headers: ERROR_HEADERS[status] } : {}),
  };
}

/** The document's groups, in reading order. */
const TAGS = [
  { name: "Identity", description: "Who is calling" },
  { name: "API keys", description: "Keys for servers (managed with an admin's session only)" },
  {
    name: "Members",
    description: "Adding members at Clerk within the plan (an admin's session only)",
  },
  { name: "Organization", description: "The caller's organization, its plan and usage" },
  { name: "Meetings", description: "The organization's calls and their links" },
  {
    name: "Bots",
    description: "Recording bots sent into a meeting through Recall.ai (one per meeting)",
  },
  { name: "Recordings", description: "A meeting's recording: upload, download with Range, delete" },
  { name: "Billing", description: "Plans, the subscription and the organization's usage" },
  { name: "Notices", description: "What the organization was told (e-mail) and its delivery" },
  { name: "Admin", description: "The operators' console: platform admins only" },
  { name: "Webhooks", description: "Called by Recall.ai, Stripe and Clerk; signed" },
  { name: "Operations", description: "Health and scheduled jobs" },
];

export type OpenApiDocument = ReturnType<OpenApiGeneratorV3["generateDocument"]>;

/**
 * The OpenAPI 3 document of `routes`, built from the same declarations that mount them
 * (`defineRoute`), so the document cannot drift from what the handlers validate.
 */
export function buildOpenApiDocument(
  routes: readonly { operation(documentation: RouteDocumentation): RouteConfig }[],
  version: string,
  documentation: RouteDocumentation,
): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent("securitySchemes", BEARER_AUTH, {
    type: "http",
    scheme: "bearer",
    description: "A Clerk session JWT, or an API key (`zn_...`).",
  });
  registry.register("ErrorBody", ErrorBodySchema);
  const operationIds = new Set<string>();
  const usedTags = new Set<string>();
  for (const route of routes) {
    const operation = route.operation(documentation);
    const { operationId, method, path, tags } = operation;
    if (!operationId || operationIds.has(operationId)) {
      throw new Error(
        `${method.toUpperCase()} ${path}: operationId "${operationId}" is missing or taken`,
      );
    }
    operationIds.add(operationId);
    for (const tag of tags ?? []) usedTags.add(tag);
    registry.registerPath(operation);
  }
  const generator = new OpenApiGeneratorV3(registry.definitions);
  return generator.generateDocument({
    openapi: "3.0.3",
    info: {
      title: "zigznote API",
      version,
      description: apiGuide(),
    },
    // Known groups in reading order, then any other a route names.
    tags: [
      ...TAGS.filter((tag) => usedTags.has(tag.name)),
      ...[...usedTags]
        .filter((name) => !TAGS.some((tag) => tag.name === name))
        .map((name) => ({ name })),
    ],
    servers: [{ url: "/" }],
  });
}

export { z };
