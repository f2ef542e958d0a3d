/**
 * Every response a test receives from an app made by `createTestApp` is checked against that
 * app's own OpenAPI document (what `/openapi.json` serves): the operation exists, the status is
 * listed, the content type is one the status lists (or there is no body where none is listed),
 * a JSON body matches the status's schema, and a header the app adds to answers whatever their
 * route (`Idempotent-Replayed` on a replay) is one the status declares. Schemas are compiled by openapi-backend (Ajv,
 * OpenAPI 3 semantics such as `nullable`), once per document and operation.
 *
 * Responses are only recorded while a test runs (status, content type, JSON bytes): they are
 * checked afterwards, so the checking never slows the app under test (timeouts, races).
 * `test/support/setupOpenApi.ts` checks them after each test (an `afterEach` that every test file runs)
 * and fails the test that received one the document does not describe, naming the request, the
 * status and what does not match. A drift (a new status, route or field the declaration does not
 * document) therefore fails the suite at the first test that meets it.
 */
import addFormats from "ajv-formats";
import express, { type Express, type Request, type Response } from "express";
import { dereferenceSync } from "dereference-json-schema";
import { OpenAPIRouter, OpenAPIValidator, type Document, type Operation } from "openapi-backend";
import { isErrorCode } from "@zigznote/shared";
import { documentedDetailKeys } from "../../src/http/errorExamples";
import type { OpenApiDocument } from "../../src/http/openapi";

/** One request and what the app answered, as seen at the socket. */
export interface Exchange {
  method: string;
  /** The request's path, without the query string. */
  path: string;
  status: number;
  /** The Content-Type header as sent, if any. */
  contentType: string | undefined;
  /** How many body bytes were sent (0 for no body). */
  bodyLength: number;
  /** The body, kept only when it is JSON (streamed media bodies are not buffered). */
  jsonBody: Buffer | undefined;
  /** A HEAD request: checked as the GET it mirrors, without a body. */
  isHead: boolean;
  /** Which of `CHECKED_HEADERS` the answer carried (lower case). */
  headers: string[];
}

/**
 * Response headers the app adds outside the route's own answer (the Idempotency-Key kernel's
 * replay): the status that carries one must declare it.
 */
const CHECKED_HEADERS = ["idempotent-replayed"];

/**
 * Paths the app serves on purpose without describing them in the document: the root's links, the
 * Prometheus scrape, the document itself, and the docs page with its static assets.
 */
const UNDOCUMENTED_PATHS = [
  /^\/$/,
  /^\/metrics$/,
  /^\/openapi\.json$/,
  /^\/docs(\/.*)?$/,
  // The admin console's page and files (a web app on the API's origin, not an API route).
  /^\/admin(\/.*)?$/,
];

/**
 * The app's own answers to a request no operation describes: 404 for a path it does not have,
 * 405 (with `Allow`) for a method a path does not have, 429 once the address's budget is spent
 * (a path under /api/ counts against it like a failed authentication).
 */
const NO_OPERATION_ANSWERS: Record<number, string> = {
  404: "ROUTE_NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  429: "RATE_LIMITED",
};

interface Checker {
  check(exchange: Exchange): string[];
}

interface State {
  checkers: Map<string, Checker>;
  /** Responses received and not checked yet, each with its app's checker. */
  received: { checker: () => Checker; exchange: Exchange }[];
}

// On the global object so that a module registry reset inside a test file (jest.isolateModules)
// cannot make a second, unobserved list.
const STATE_KEY = Symbol.for("zigznote.openApiConformance");
function state(): State {
  const holder = globalThis as unknown as Record<symbol, State | undefined>;
  return (holder[STATE_KEY] ??= { checkers: new Map(), received: [] });
}

/** Checks the responses received since the last call and returns what disagrees. */
export function takeOpenApiViolations(): string[] {
  const { received } = state();
  return received.splice(0, received.length).flatMap(({ checker, exchange }) => {
    try {
      return checker().check(exchange);
    } catch (error) {
      return [`${describeExchange(exchange)}: could not be checked: ${String(error)}`];
    }
  });
}

/**
 * Checks the responses received since the last call and throws when any disagrees with its
 * document, with one line per response: request, status, content type, operation and what does
 * not match.
 */
export function assertNoOpenApiViolations(): void {
  const violations = takeOpenApiViolations();
  if (violations.length === 0) return;
  throw new Error(
    `${violations.length} response(s) disagree with /openapi.json (document the status or ` +
      `schema in the route's defineRoute, or fix the response):\n  - ${violations.join("\n  - ")}`,
  );
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = mediaType(contentType);
  return type === "application/json" || type.endsWith("+json");
}

function mediaType(contentType: string): string {
  return (contentType.split(";")[0] ?? "").trim().toLowerCase();
}

/** `audio/*` lists every audio type, `*\/*` every type. */
function isListed(listed: string, actual: string): boolean {
  const [type, subtype] = listed.toLowerCase().split("/");
  const [actualType, actualSubtype] = actual.split("/");
  return (type === "*" || type === actualType) && (subtype === "*" || subtype === actualSubtype);
}

function describeExchange(exchange: Exchange): string {
  return `${exchange.method} ${exchange.path} -> ${exchange.status}${
    exchange.contentType ? ` (${exchange.contentType})` : ""
  }`;
}

function describeBody(exchange: Exchange): string {
  if (!exchange.jsonBody) return "";
  const text = exchange.jsonBody.toString("utf8");
  return `\n      body: ${text.length > 500 ? `${text.slice(0, 500)}...` : text}`;
}

/**
 * OpenAPI 3.0 lets `nullable` stand without `type` (zod-to-openapi writes `z.unknown()` as
 * `{ nullable: true }`), where it changes nothing: every value is allowed already. Ajv refuses to
 * compile it, so the checker's copy drops it there.
 */
function dropUntypedNullable(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) dropUntypedNullable(item);
    return;
  }
  if (!node || typeof node !== "object") return;
  const object = node as Record<string, unknown>;
  if (object.nullable === true && object.type === undefined && object.$ref === undefined) {
    delete object.nullable;
  }
  for (const value of Object.values(object)) dropUntypedNullable(value);
}

function buildChecker(document: OpenApiDocument): Checker {
  const copy = structuredClone(document) as unknown as Document;
  // openapi-backend keys its validators by operation id; the document names none, so each
  // operation is named by its route.
  for (const [path, item] of Object.entries(copy.paths ?? {})) {
    for (const [method, operation] of Object.entries(item ?? {})) {
      if (operation && typeof operation === "object" && "responses" in operation) {
        (operation as { operationId?: string }).operationId ??= `${method.toUpperCase()} ${path}`;
      }
    }
  }
  dropUntypedNullable(copy);
  // What OpenAPIBackend's `init` does in its quick mode, synchronously: dereference, route, and
  // compile each operation's validators on first use.
  const definition = dereferenceSync(copy) as unknown as Document;
  const router = new OpenAPIRouter({ definition });
  const validator = new OpenAPIValidator({
    definition,
    router,
    lazyCompileValidators: true,
    customizeAjv: (ajv) => {
      addFormats(ajv);
      return ajv;
    },
  });

  return {
    check(exchange) {
      const operation = router.matchOperation({
        method: exchange.isHead ? "GET" : exchange.method,
        path: exchange.path,
        headers: {},
      });
      if (!operation) return checkUndocumented(exchange);
      return checkOperation(validator, operation, exchange);
    },
  };
}

/**
 * A request no operation describes: only the paths served on purpose without a description, a
 * CORS preflight, and the app's own 404 or 405 for a path or method it does not have, may answer
 * it.
 */
function checkUndocumented(exchange: Exchange): string[] {
  if (UNDOCUMENTED_PATHS.some((pattern) => pattern.test(exchange.path))) return [];
  // A listed origin's CORS preflight (http/cors.ts): 204, no body, under /api/.
  if (
    exchange.method === "OPTIONS" &&
    exchange.status === 204 &&
    exchange.bodyLength === 0 &&
    exchange.path.startsWith("/api/")
  ) {
    return [];
  }
  const expectedCode = NO_OPERATION_ANSWERS[exchange.status];
  if (expectedCode && exchange.jsonBody) {
    try {
      const body = JSON.parse(exchange.jsonBody.toString("utf8")) as {
        error?: { code?: unknown };
      };
      if (body.error?.code === expectedCode) return [];
    } catch {
      // Reported below.
    }
  }
  return [
    `${describeExchange(exchange)}: no operation of the document describes ${exchange.method} ${exchange.path}${describeBody(exchange)}`,
  ];
}

function checkOperation(
  validator: OpenAPIValidator,
  operation: Operation,
  exchange: Exchange,
): string[] {
  const where = `${describeExchange(exchange)} [${operation.method.toUpperCase()} ${operation.path}]`;
  const responses = operation.responses as Record<
    string,
    { content?: Record<string, unknown>; headers?: Record<string, unknown> }
  >;
  const response =
    responses[String(exchange.status)] ??
    responses[`${Math.floor(exchange.status / 100)}XX`] ??
    responses.default;
  if (!response) {
    return [
      `${where}: status ${exchange.status} is not listed (listed: ${Object.keys(responses).join(", ")})${describeBody(exchange)}`,
    ];
  }
  const declared = new Set(Object.keys(response.headers ?? {}).map((name) => name.toLowerCase()));
  const undeclared = exchange.headers
    .filter((name) => !declared.has(name))
    .map(
      (name) =>
        `${where}: header ${name} is not declared for ${exchange.status} (declared: ${[...declared].join(", ") || "none"})`,
    );
  return [...undeclared, ...checkContent(validator, operation, exchange, where, response)];
}

/** The answer's content type and body against what its status lists. */
function checkContent(
  validator: OpenAPIValidator,
  operation: Operation,
  exchange: Exchange,
  where: string,
  response: { content?: Record<string, unknown> },
): string[] {
  const listed = Object.keys(response.content ?? {});
  if (listed.length === 0) {
    return exchange.bodyLength > 0 || exchange.contentType
      ? [`${where}: the document lists no body for ${exchange.status}, but one was sent`]
      : [];
  }
  if (!exchange.contentType) {
    return [`${where}: no Content-Type, the document lists ${listed.join(", ")}`];
  }
  const actual = mediaType(exchange.contentType);
  if (!listed.some((type) => isListed(type, actual))) {
    return [`${where}: content type ${actual} is not listed (listed: ${listed.join(", ")})`];
  }
  // Media bodies (a recording download) are checked for status and content type only.
  if (exchange.isHead || !isJson(exchange.contentType)) return [];

  let body: unknown;
  try {
    body = JSON.parse((exchange.jsonBody ?? Buffer.alloc(0)).toString("utf8"));
  } catch {
    return [`${where}: the body is not JSON${describeBody(exchange)}`];
  }
  const result = validator.validateResponse(body, operation, exchange.status);
  if (result.valid) return checkErrorExample(where, response, body, exchange);
  const errors = (result.errors ?? [])
    .map((error) => {
      const params = JSON.stringify(error.params);
      return `${error.instancePath || "(body)"} ${error.message ?? "is invalid"} ${params}`;
    })
    .join("; ");
  return [`${where}: the body does not match the schema: ${errors}${describeBody(exchange)}`];
}

/**
 * An error answer's `details` may only carry keys its code's example shows (the document's
 * example for this operation, or the variants `errorExamples.ts` names): the examples in
 * `/docs` are what clients really get.
 */
function checkErrorExample(
  where: string,
  response: { content?: Record<string, unknown> },
  body: unknown,
  exchange: Exchange,
): string[] {
  const error = (body as { error?: { code?: unknown; details?: unknown } } | null)?.error;
  if (exchange.status < 400 || typeof error?.code !== "string" || !isErrorCode(error.code)) {
    return [];
  }
  const media = response.content?.["application/json"] as
    { examples?: Record<string, { value?: { error?: { details?: object } } }> } | undefined;
  const shown = Object.keys(media?.examples?.[error.code]?.value?.error?.details ?? {});
  const allowed = new Set([...shown, ...documentedDetailKeys(error.code)]);
  const extra = Object.keys((error.details as object | undefined) ?? {}).filter(
    (key) => !allowed.has(key),
  );
  return extra.length === 0
    ? []
    : [
        `${where}: details.${extra.join(", details.")} of ${error.code} is not in its example ` +
          `(add it to apps/api/src/http/errorExamples.ts)${describeBody(exchange)}`,
      ];
}

/** The checker of `document`, built on first use and shared by the apps that serve it. */
function checkerFor(document: OpenApiDocument): () => Checker {
  const key = JSON.stringify(document);
  return () => {
    const { checkers } = state();
    let checker = checkers.get(key);
    if (!checker) {
      checker = buildChecker(document);
      checkers.set(key, checker);
    }
    return checker;
  };
}

type Write = (...args: unknown[]) => boolean;
type End = (...args: unknown[]) => Response;

function chunkBytes(chunk: unknown, encoding: unknown): Buffer | undefined {
  if (chunk === undefined || chunk === null || typeof chunk === "function") return undefined;
  if (typeof chunk === "string") {
    return Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
  }
  if (chunk instanceof Uint8Array) return Buffer.from(chunk);
  return undefined;
}

/** Watches one response: its status, content type and body bytes (kept only when JSON). */
function observe(req: Request, res: Response, onFinish: (exchange: Exchange) => void): void {
  const chunks: Buffer[] = [];
  let bodyLength = 0;
  let keepsBody: boolean | undefined;
  const contentType = () => {
    const value = res.getHeader("content-type");
    return value === undefined ? undefined : String(value);
  };
  const record = (chunk: unknown, encoding: unknown) => {
    const bytes = chunkBytes(chunk, encoding);
    if (!bytes || bytes.length === 0) return;
    bodyLength += bytes.length;
    keepsBody ??= isJson(contentType());
    if (keepsBody) chunks.push(bytes);
  };

  const write = res.write.bind(res) as Write;
  const end = res.end.bind(res) as End;
  (res as unknown as { write: Write }).write = (...args) => {
    record(args[0], args[1]);
    return write(...args);
  };
  (res as unknown as { end: End }).end = (...args) => {
    record(args[0], args[1]);
    return end(...args);
  };

  const method = req.method;
  const path = req.originalUrl.split("?")[0] ?? "/";
  res.once("finish", () => {
    onFinish({
      method,
      path,
      status: res.statusCode,
      contentType: contentType(),
      bodyLength,
      jsonBody: keepsBody ? Buffer.concat(chunks) : undefined,
      isHead: method === "HEAD",
      headers: CHECKED_HEADERS.filter((name) => res.getHeader(name) !== undefined),
    });
  });
}

/**
 * `app` behind a first middleware that checks each of its responses against `document` (see the
 * module comment). The returned app is what tests call and listen on.
 */
export function checkResponsesAgainst(app: Express, document: OpenApiDocument): Express {
  const checker = checkerFor(document);
  const checked = express();
  checked.disable("x-powered-by");
  checked.use((req, res, next) => {
    observe(req, res, (exchange) => state().received.push({ checker, exchange }));
    next();
  });
  checked.use(app);
  return checked;
}
