import {
  BadGatewayError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  PayloadTooLargeError,
  PaymentRequiredError,
  ServiceUnavailableError,
  TooManyRequestsError,
  UnauthorizedError,
  ValidationError,
  BadRequestError,
  type AppError,
} from "@zigznote/shared";
import { createOrganization } from "@zigznote/database/testing";
import express from "express";
import request from "supertest";
import { z } from "zod";
import { createLogger } from "../../src/lib/logger";
import { errorHandler, notFoundHandler } from "../../src/http/errorHandler";
import { requestId } from "../../src/http/requestId";
import { validate } from "../../src/http/validate";
import { createTestApp, type TestApp } from "../support/helpers";

/** An app with the real middleware chain and routes that fail in each way a handler can. */
function buildFailingApp(testApp: TestApp): express.Express {
  const app = express();
  app.use(requestId);
  app.use(express.json({ limit: "1kb" }));
  const errors: Record<string, AppError> = {
    "bad-request": new BadRequestError("Header X is malformed"),
    validation: new ValidationError(undefined, {
      fields: [{ path: "title", message: "Required" }],
    }),
    unauthorized: new UnauthorizedError(),
    "payment-required": new PaymentRequiredError("Subscription suspended", {
      code: "SUBSCRIPTION_SUSPENDED",
    }),
    forbidden: new ForbiddenError(),
    "not-found": new NotFoundError("Meeting not found"),
    conflict: new ConflictError("This meeting already has an active bot"),
    "too-large": new PayloadTooLargeError(),
    "too-many": new TooManyRequestsError("Too many failed attempts", { retryAfterSeconds: 900 }),
    "bad-gateway": new BadGatewayError("Recall did not answer"),
    unavailable: new ServiceUnavailableError(),
  };
  app.get("/throw/:kind", (req) => {
    throw errors[req.params.kind]!;
  });
  app.get("/async-throw", async () => {
    await Promise.resolve();
    throw new ConflictError("async conflict");
  });
  app.get("/crash", () => {
    throw new Error("secret connection string postgresql://admin:hunter2@db/prod");
  });
  app.post(
    "/validate",
    validate({ body: z.object({ title: z.string().min(1), startTime: z.iso.datetime() }) }),
    (req, res) => {
      res.json(req.valid.body);
    },
  );
  app.post("/duplicate-org", async (_req, res) => {
    const org = await createOrganization(testApp.ctx.db);
    await createOrganization(testApp.ctx.db, { clerkId: org.clerkId });
    res.json({ unreachable: true });
  });
  app.use(notFoundHandler);
  app.use(errorHandler(createLogger("silent")));
  return app;
}

describe("error handler", () => {
  let testApp: TestApp;
  let app: express.Express;

  beforeAll(() => {
    testApp = createTestApp();
    app = buildFailingApp(testApp);
  });
  afterAll(() => testApp.close());

  it.each([
    ["bad-request", 400, "BAD_REQUEST"],
    ["validation", 400, "VALIDATION_ERROR"],
    ["unauthorized", 401, "UNAUTHORIZED"],
    ["payment-required", 402, "SUBSCRIPTION_SUSPENDED"],
    ["forbidden", 403, "FORBIDDEN"],
    ["not-found", 404, "NOT_FOUND"],
    ["conflict", 409, "CONFLICT"],
    ["too-large", 413, "PAYLOAD_TOO_LARGE"],
    ["too-many", 429, "TOO_MANY_REQUESTS"],
    ["bad-gateway", 502, "BAD_GATEWAY"],
    ["unavailable", 503, "SERVICE_UNAVAILABLE"],
  ])("GET /throw/%s answers %i with code %s in the standard body", async (kind, status, code) => {
    const res = await request(app).get(`/throw/${kind}`).set("X-Request-Id", `req-${kind}`);
    expect(res.status).toBe(status);
    expect(res.body).toEqual({
      error: expect.objectContaining({ code, message: expect.any(String) }),
      requestId: `req-${kind}`,
    });
    expect(res.headers["x-request-id"]).toBe(`req-${kind}`);
  });

  it("sends Retry-After with a 429 and the seconds in the body", async () => {
    const res = await request(app).get("/throw/too-many");
    expect(res.headers["retry-after"]).toBe("900");
    expect(res.body.error.details).toEqual({ retryAfterSeconds: 900 });
  });

  it("handles rejected async handlers (Express 5)", async () => {
    const res = await request(app).get("/async-throw");
    expect(res.status).toBe(409);
    expect(res.body.error.message).toBe("async conflict");
  });

  it("turns a zod failure into 400 with every field issue", async () => {
    const res = await request(app).post("/validate").send({ title: "", startTime: "tomorrow" });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("VALIDATION_ERROR");
    const paths = (res.body.error.details.fields as { path: string }[]).map((f) => f.path).sort();
    expect(paths).toEqual(["startTime", "title"]);
  });

  it("passes a valid body through parsed", async () => {
    const body = { title: "Standup", startTime: "2026-12-01T09:00:00Z" };
    const res = await request(app).post("/validate").send(body);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(body);
  });

  it("answers invalid JSON with 400 INVALID_JSON", async () => {
    const res = await request(app)
      .post("/validate")
      .set("Content-Type", "application/json")
      .send("{not json");
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("INVALID_JSON");
  });

  it("answers a body over the limit with 413", async () => {
    const res = await request(app)
      .post("/validate")
      .send({ title: "x".repeat(5000) });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("maps a Prisma unique violation from real PostgreSQL to 409 CONFLICT", async () => {
    const res = await request(app).post("/duplicate-org");
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("CONFLICT");
    expect(res.body.error.details).toEqual({ constraint: "organizations_clerk_id_key" });
  });

  it("answers an unknown error with a generic 500 that leaks nothing", async () => {
    const res = await request(app).get("/crash");
    expect(res.status).toBe(500);
    expect(res.body.error).toEqual({
      code: "INTERNAL_ERROR",
      message: "Internal server error",
      details: {},
    });
    expect(JSON.stringify(res.body)).not.toMatch(/hunter2|postgresql|stack|at /);
    expect(typeof res.body.requestId).toBe("string");
  });

  it("answers an unknown route with 404 ROUTE_NOT_FOUND", async () => {
    const res = await request(app).delete("/nowhere");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("ROUTE_NOT_FOUND");
  });

  it("makes a request id when the client sends none or a malformed one", async () => {
    const res = await request(app)
      .get("/throw/forbidden")
      .set("X-Request-Id", "bad id with spaces");
    expect(res.body.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers["x-request-id"]).toBe(res.body.requestId);
  });
});
