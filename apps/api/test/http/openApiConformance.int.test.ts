import { Readable } from "node:stream";
import { ConflictError, NotFoundError } from "@zigznote/shared";
import express, { type Express } from "express";
import OpenAPISchemaValidator from "openapi-schema-validator";
import request from "supertest";
import { appOpenApiDocument } from "../../src/app";
import { errorHandler, notFoundHandler } from "../../src/http/errorHandler";
import { buildOpenApiDocument, z, type OpenApiDocument } from "../../src/http/openapi";
import { requestId } from "../../src/http/requestId";
import { UNKEYED } from "../../src/http/idempotency";
import { defineRoute, mountRoutes } from "../../src/http/route";
import { createLogger } from "../../src/lib/logger";
import { createTestApp, type TestApp } from "../support/helpers";
import {
  assertNoOpenApiViolations,
  checkResponsesAgainst,
  takeOpenApiViolations,
} from "../support/openApiConformance";
import { AUTHENTICATION_CODES } from "../../src/identity";

/**
 * A small app whose one documented route can be made to answer what its declaration does not
 * say, and one route the document does not have: the drifts the checker must report.
 */
function driftingApp(): { app: Express; document: OpenApiDocument } {
  const routes = [
    defineRoute({
      method: "get",
      path: "/widgets/:id",
      operationId: "getWidget",
      tag: "Widgets",
      summary: "A widget",
      auth: "none",
      params: z.object({ id: z.uuid() }),
      query: z.object({ answer: z.string().optional() }),
      responses: {
        200: {
          description: "The widget",
          schema: z.object({ id: z.uuid(), sizeBytes: z.number().int() }),
        },
      },
      errors: ["NOT_FOUND"],
      // The answers the compiler refuses (`as never`) are what the response check must catch.
      handler({ params, query }) {
        switch (query.answer) {
          case "teapot":
            return {
              status: 418,
              body: { error: { code: "TEAPOT", message: "short" }, requestId: "r" },
            } as never;
          case "wrong-body":
            return { status: 200, body: { id: params.id, sizeBytes: "12" } } as never;
          case "text":
            return {
              status: 200,
              stream: Readable.from(["12 bytes"]),
              headers: { "Content-Type": "text/plain; charset=utf-8" },
            } as never;
          case "undeclared-code":
            throw new ConflictError("A widget code the route does not declare", {
              code: "BOT_ALREADY_ACTIVE",
            });
          case "undeclared-404-code":
            throw new NotFoundError("No bot", { code: "BOT_NOT_FOUND" });
          case "declared-code":
            throw new NotFoundError("No such widget");
          case "no-content":
            return { status: 204 } as never;
          case "replayed":
            // What the Idempotency-Key kernel adds to a stored answer it replays.
            return {
              status: 200,
              body: { id: params.id, sizeBytes: 12 },
              headers: { "Idempotent-Replayed": "true" },
            } as never;
          default:
            return { status: 200, body: { id: params.id, sizeBytes: 12 } };
        }
      },
    }),
  ];
  const app = express();
  app.use(requestId);
  app.get("/undocumented", (_req, res) => {
    res.json({ ok: true });
  });
  const router = express.Router();
  mountRoutes(router, routes, {
    authenticate: (_req, _res, next) => next(),
    parseJsonBody: express.json(),
    // The widgets are read-only: no route takes an Idempotency-Key.
    idempotency: {
      step: (_req, _res, next) => next(),
      deferredStep: (_req, _res, next) => next(),
      answerLostClaim: async () => {},
      handlerStarts: () => UNKEYED,
    },
  });
  app.use(router);
  app.use(notFoundHandler);
  app.use(errorHandler(createLogger("silent")));
  return {
    app,
    document: buildOpenApiDocument(routes, "test", { authenticationCodes: AUTHENTICATION_CODES }),
  };
}

const widgetId = "6f1c1f8e-3c1a-4a55-9d3e-2b0f7f6a9c10";

describe("OpenAPI conformance of responses (test/support/openApiConformance.ts)", () => {
  let checked: Express;
  beforeAll(() => {
    const { app, document } = driftingApp();
    checked = checkResponsesAgainst(app, document);
  });

  it("passes a response the document describes, and a 400 the params schema implies", async () => {
    await request(checked).get(`/widgets/${widgetId}`).expect(200);
    await request(checked).get("/widgets/not-a-uuid").expect(400);
    expect(takeOpenApiViolations()).toEqual([]);
  });

  it("reports a status the route does not list, naming the request and the operation", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=teapot`).expect(418);
    const violations = takeOpenApiViolations();
    expect(violations).toHaveLength(1);
    expect(violations[0]).toContain(`GET /widgets/${widgetId} -> 418`);
    expect(violations[0]).toContain("[GET /widgets/{id}]");
    expect(violations[0]).toContain("status 418 is not listed (listed: 200, 400, 404, 500, 503)");
  });

  it("reports a body that does not match the status's schema, with the schema error", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=wrong-body`).expect(200);
    const violations = takeOpenApiViolations();
    expect(violations).toHaveLength(1);
    expect(violations[0]).toContain("the body does not match the schema");
    expect(violations[0]).toContain("/sizeBytes must be integer");
  });

  it("reports an error code the route does not declare, and passes one it does", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=declared-code`).expect(404);
    expect(takeOpenApiViolations()).toEqual([]);
    // 409 is not listed at all; a listed status with another code is refused by its enum.
    await request(checked).get(`/widgets/${widgetId}?answer=undeclared-code`).expect(409);
    expect(takeOpenApiViolations()).toEqual([expect.stringContaining("status 409 is not listed")]);
    await request(checked).get(`/widgets/${widgetId}?answer=undeclared-404-code`).expect(404);
    expect(takeOpenApiViolations()).toEqual([
      expect.stringMatching(
        /\/error\/code must be equal to one of the allowed values[\s\S]*BOT_NOT_FOUND/,
      ),
    ]);
  });

  it("reports a content type the status does not list", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=text`).expect(200);
    expect(takeOpenApiViolations()).toEqual([
      expect.stringContaining("content type text/plain is not listed (listed: application/json)"),
    ]);
  });

  it("reports an empty answer with a status the route does not list", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=no-content`).expect(204);
    expect(takeOpenApiViolations()).toEqual([expect.stringContaining("status 204 is not listed")]);
  });

  it("reports an Idempotent-Replayed header on a status that does not declare it", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=replayed`).expect(200);
    expect(takeOpenApiViolations()).toEqual([
      expect.stringContaining("header idempotent-replayed is not declared for 200"),
    ]);
  });

  it("reports a route the document does not have, not the app's 404 and 405 for unknown paths and methods", async () => {
    await request(checked).get("/undocumented").expect(200);
    await request(checked).delete(`/widgets/${widgetId}`).expect(405);
    await request(checked).get("/nowhere").expect(404);
    expect(takeOpenApiViolations()).toEqual([
      expect.stringContaining(
        "GET /undocumented -> 200 (application/json; charset=utf-8): no operation of the document describes GET /undocumented",
      ),
    ]);
  });

  it("fails the test through the hook every test file runs, listing each violation", async () => {
    await request(checked).get(`/widgets/${widgetId}?answer=teapot`).expect(418);
    await request(checked).get("/undocumented").expect(200);
    expect(() => assertNoOpenApiViolations()).toThrow(
      /2 response\(s\) disagree with \/openapi\.json[\s\S]*418[\s\S]*GET \/undocumented -> 200/,
    );
    // The check cleared what it reported.
    expect(takeOpenApiViolations()).toEqual([]);
  });
});

describe("the document responses are checked against", () => {
  let testApp: TestApp;
  beforeAll(() => {
    testApp = createTestApp();
  });
  afterAll(async () => {
    await testApp.close();
  });

  it("is what GET /openapi.json serves, and a valid OpenAPI 3.0 document", async () => {
    const served = await request(testApp.app).get("/openapi.json").expect(200);
    expect(served.body).toEqual(JSON.parse(JSON.stringify(appOpenApiDocument(testApp.ctx.routes))));
    expect(served.body.openapi).toBe("3.0.3");
    const { errors } = new OpenAPISchemaValidator({ version: 3 }).validate(served.body);
    expect(errors).toEqual([]);
  });

  it("skips what is served on purpose without a description (/, /metrics, /docs)", async () => {
    await request(testApp.app).get("/").expect(200);
    await request(testApp.app).get("/metrics").expect(200);
    await request(testApp.app).get("/docs/").expect(200);
    expect(takeOpenApiViolations()).toEqual([]);
  });
});

describe("createTestApp", () => {
  it("checks each response of its app: a status a real route does not list is reported", async () => {
    // An authentication that answers 418 itself: GET /api/v1/me does not list 418.
    const testApp = createTestApp({
      app: {
        authenticate: (_req, res) => {
          res.status(418).json({ error: { code: "TEAPOT", message: "short" }, requestId: "r" });
        },
      },
    });
    try {
      await request(testApp.app).get("/api/v1/me").expect(418);
      expect(takeOpenApiViolations()).toEqual([
        expect.stringContaining(
          "GET /api/v1/me -> 418 (application/json; charset=utf-8) [GET /api/v1/me]: status 418 is not listed",
        ),
      ]);
    } finally {
      await testApp.close();
    }
  });
});
