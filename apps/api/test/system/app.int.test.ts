import { createPrismaClient } from "@zigznote/database";
import request from "supertest";
import { createApp } from "../../src/app";
import { createTestApp, type TestApp } from "../support/helpers";
import { captureLogs } from "../support/logCapture";

describe("GET /health", () => {
  it("answers 200 with the database up and Redis not configured", async () => {
    const testApp = createTestApp();
    try {
      const res = await request(testApp.app).get("/health");
      expect(res.status).toBe(200);
      expect(res.body.status).toBe("ok");
      expect(res.body.checks.database.status).toBe("up");
      expect(res.body.checks.redis).toEqual({ status: "not_configured" });
    } finally {
      await testApp.close();
    }
  });

  it("reports real Redis as up when configured", async () => {
    const testApp = createTestApp({ redis: true });
    try {
      const res = await request(testApp.app).get("/health");
      expect(res.status).toBe(200);
      expect(res.body.checks.redis.status).toBe("up");
    } finally {
      await testApp.close();
    }
  });

  it("answers 503 when the database is unreachable, and logs why (once) instead of showing it", async () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    const db = createPrismaClient("postgresql://postgres@127.0.0.1:1/zigznote_test", {
      connectionTimeoutMs: 1_000,
    });
    const logs = captureLogs("info");
    const testApp = createTestApp({ db, logger: logs.logger });
    try {
      for (let poll = 0; poll < 2; poll++) {
        const res = await request(testApp.app).get("/health");
        expect(res.status).toBe(503);
        expect(res.body.status).toBe("unavailable");
        expect(res.body.checks.database).toEqual({ status: "down" });
        // The public answer names neither the address nor the driver's error.
        expect(res.text).not.toContain("postgresql://");
        expect(res.text).not.toContain("127.0.0.1");
        expect(res.text).not.toMatch(/ECONNREFUSED|connect/i);
      }
      const down = logs.entries().filter((entry) => entry.msg === "health: database is down");
      expect(down).toHaveLength(1);
      expect(JSON.stringify(down[0]!.err)).toContain("Can't reach database server at 127.0.0.1:1");
    } finally {
      await testApp.close();
      await db.$disconnect();
    }
  });
});

describe("GET /health with Redis unreachable", () => {
  it("answers 200 degraded without the driver's message (it names the address)", async () => {
    // Port 1 on loopback refuses every connection; commands fail at once instead of queueing.
    const testApp = createTestApp({ redis: "redis://127.0.0.1:1", redisOfflineQueue: false });
    try {
      const res = await request(testApp.app).get("/health");
      expect(res.status).toBe(200);
      expect(res.body.status).toBe("degraded");
      expect(res.body.checks.redis).toEqual({ status: "down" });
      expect(res.text).not.toContain("127.0.0.1");
    } finally {
      await testApp.close();
    }
  });
});

describe("observability and documentation", () => {
  let testApp: TestApp;
  beforeAll(() => {
    testApp = createTestApp();
  });
  afterAll(() => testApp.close());

  it("GET /metrics serves Prometheus text with process metrics and the request histogram", async () => {
    await request(testApp.app).get("/health");
    await request(testApp.app).get("/no/such/route/123");
    const res = await request(testApp.app).get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.text).toContain("process_cpu_user_seconds_total");
    expect(res.text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/health",status_code="200"\} 1/,
    );
    // Unmatched paths share one label: raw paths never become label values.
    expect(res.text).toContain('route="unmatched",status_code="404"');
    expect(res.text).not.toContain("/no/such/route/123");
  });

  it("GET /openapi.json serves an OpenAPI 3 document with the registered routes", async () => {
    const res = await request(testApp.app).get("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(res.body.info.title).toBe("zigznote API");
    expect(res.body.paths["/health"].get).toBeDefined();
    expect(res.body.components.schemas.ErrorBody).toBeDefined();
    expect(res.body.components.securitySchemes.bearerAuth).toEqual(
      expect.objectContaining({ type: "http", scheme: "bearer" }),
    );
  });

  it("GET /docs serves the browsable page", async () => {
    const res = await request(testApp.app).get("/docs/");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/text\/html/);
    expect(res.text).toContain("swagger-ui");
    const init = await request(testApp.app).get("/docs/swagger-ui-init.js");
    expect(init.status).toBe(200);
    expect(init.text).toContain("zigznote API");
  });

  it("builds a second app from the same context (benchmarks compare two stacks on one context)", async () => {
    const second = createApp(testApp.ctx);
    expect((await request(second).get("/health")).status).toBe(200);
  });

  it("sets security headers and no X-Powered-By", async () => {
    const res = await request(testApp.app).get("/health");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["content-security-policy"]).toBeDefined();
    expect(res.headers["x-powered-by"]).toBeUndefined();
  });

  it("answers an unknown /api/v1 route with the standard 404 body", async () => {
    const res = await request(testApp.app).get("/api/v1/nothing-here");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({
      error: {
        code: "ROUTE_NOT_FOUND",
        message: "No route for GET /api/v1/nothing-here",
        details: {},
      },
      requestId: expect.any(String),
    });
  });
});
