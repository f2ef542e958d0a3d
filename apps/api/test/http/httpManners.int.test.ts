import request from "supertest";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

/** Issue 16, item 8: the smaller HTTP manners a client author relies on. */

let testApp: TestApp;
let caller: AuthenticatedCaller;
beforeAll(async () => {
  testApp = createTestApp({
    env: { JSON_BODY_LIMIT: "2kb", STRIPE_WEBHOOK_SECRET: "whsec_manners_test" },
  });
  caller = await authHeaderFor(testApp, { role: "admin" });
});
afterAll(() => testApp.close());

const api = () => request(testApp.app);

async function uploadedRecording(): Promise<{ meetingId: string; etag: string; size: number }> {
  const created = await api()
    .post("/api/v1/meetings")
    .set(caller.headers)
    .send({ title: "Weekly", meetingUrl: "https://us02web.zoom.us/j/85012345678" });
  expect(created.status).toBe(201);
  const meetingId = created.body.id as string;
  const body = Buffer.alloc(4096, 7);
  const stored = await api()
    .put(`/api/v1/meetings/${meetingId}/recording`)
    .set(caller.headers)
    .set("Content-Type", "video/mp4")
    .send(body);
  expect(stored.status).toBe(201);
  return { meetingId, etag: `"${stored.body.sha256 as string}"`, size: body.length };
}

describe("HTTP manners", () => {
  it("answers 415 saying so when a JSON route gets a body that is not JSON", async () => {
    const res = await api()
      .post("/api/v1/meetings")
      .set(caller.headers)
      .set("Content-Type", "text/plain")
      .send('{"title":"x","meetingUrl":"https://us02web.zoom.us/j/85012345678"}');
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(res.body.error.message).toContain("application/json");
    expect(
      await testApp.ctx.db.meeting.count({
        where: { organizationId: caller.organizationId, title: "x" },
      }),
    ).toBe(0);
  });

  it("refuses unknown query parameters with 400 like unknown body keys", async () => {
    const res = await api().get("/api/v1/meetings?limt=5").set(caller.headers);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("VALIDATION_ERROR");
    expect(res.body.error.details).toEqual({
      fields: [{ path: "limt", message: 'Unknown field "limt"', code: "unrecognized_keys" }],
    });
    const body = await api()
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "x", meetingUrl: "https://us02web.zoom.us/j/85012345678", tittle: "y", b: 1 });
    expect(body.status).toBe(400);
    expect(body.body.error.details.fields).toEqual([
      { path: "tittle", message: 'Unknown field "tittle"', code: "unrecognized_keys" },
      { path: "b", message: 'Unknown field "b"', code: "unrecognized_keys" },
    ]);
  });

  it("answers 405 with Allow for a known path called with another method", async () => {
    const res = await api().put("/api/v1/meetings").set(caller.headers).send({});
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("POST, GET, HEAD");
    expect(res.body.error).toMatchObject({
      code: "METHOD_NOT_ALLOWED",
      details: { allowed: ["POST", "GET", "HEAD"] },
    });
    const unknown = await api().put("/api/v1/nothing-here").set(caller.headers);
    expect(unknown.status).toBe(404);
  });

  it("answers 405 with Allow on the paths outside /api/v1 too, and 404 for a file that is not there", async () => {
    for (const [method, path] of [
      ["post", "/"],
      ["post", "/openapi.json"],
      ["put", "/openapi.json"],
      ["post", "/docs"],
      ["post", "/docs/"],
      ["post", "/metrics"],
      ["delete", "/admin"],
      ["post", "/admin/organizations"],
    ] as const) {
      const res = await api()[method](path);
      expect({ method, path, status: res.status, allow: res.headers.allow }).toEqual({
        method,
        path,
        status: 405,
        allow: "GET, HEAD",
      });
      expect(res.body.error.code).toBe("METHOD_NOT_ALLOWED");
    }
    const missingAsset = await api().get("/docs/no-such-file.js");
    expect(missingAsset.status).toBe(404);
    const head = await api().head("/openapi.json");
    expect(head.status).toBe(200);
  });

  it("sends no ETag of its own on JSON answers, so no JSON route answers 304", async () => {
    const me = await api().get("/api/v1/me").set(caller.headers);
    expect(me.status).toBe(200);
    expect(me.headers.etag).toBeUndefined();
    for (const path of ["/api/v1/me", "/api/v1/meetings"]) {
      const res = await api().get(path).set(caller.headers).set("If-None-Match", "*");
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });

  it("challenges a 401 with WWW-Authenticate: Bearer, invalid_token when credentials were sent", async () => {
    const none = await api().get("/api/v1/me");
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="zigznote"');
    const refused = await api().get("/api/v1/me").set("Authorization", "Bearer zn_live_bad");
    expect(refused.status).toBe(401);
    expect(refused.headers["www-authenticate"]).toBe(
      'Bearer realm="zigznote", error="invalid_token"',
    );
    // A webhook's bad signature is no Bearer challenge.
    const webhook = await api()
      .post("/webhooks/stripe")
      .set("Content-Type", "application/json")
      .set("stripe-signature", "t=1,v1=00")
      .send("{}");
    expect(webhook.status).toBe(401);
    expect(webhook.headers["www-authenticate"]).toBeUndefined();
  });

  it("reads a JSON body only for a caller that authenticated, and says when valid JSON is not an object", async () => {
    const unauthenticated = await api()
      .post("/api/v1/meetings")
      .set("Content-Type", "application/json")
      .send("{bad");
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.body.error.code).toBe("MISSING_CREDENTIALS");
    const tooLarge = await api()
      .post("/api/v1/meetings")
      .set("Authorization", "Bearer zn_live_bad")
      .set("Content-Type", "application/json")
      .send(`{"title":"${"x".repeat(4000)}"}`);
    expect(tooLarge.status).toBe(401);

    const broken = await api()
      .post("/api/v1/meetings")
      .set(caller.headers)
      .set("Content-Type", "application/json")
      .send("{bad");
    expect(broken.status).toBe(400);
    expect(broken.body.error).toMatchObject({
      code: "INVALID_JSON",
      message: "Request body is not valid JSON",
    });
    // Counted against the organization's budget, which every answer announces.
    expect(broken.headers.ratelimit).toMatch(/^"organization";r=\d+;t=\d+$/);
    for (const scalar of ['"a meeting"', "123", "null"]) {
      const res = await api()
        .post("/api/v1/meetings")
        .set(caller.headers)
        .set("Content-Type", "application/json")
        .send(scalar);
      expect({ scalar, status: res.status, error: res.body.error }).toMatchObject({
        scalar,
        status: 400,
        error: { code: "INVALID_JSON", message: "Request body must be a JSON object" },
      });
    }
  });

  it("points GET / to the docs", async () => {
    const json = await api().get("/").set("Accept", "application/json");
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ docs: "/docs", openapi: "/openapi.json" });
    const browser = await api().get("/").set("Accept", "text/html");
    expect(browser.status).toBe(302);
    expect(browser.headers.location).toBe("/docs");
  });

  it("answers a recording download whose ETag the client holds with 304, and a 416 with Content-Range", async () => {
    const { meetingId, etag, size } = await uploadedRecording();
    const current = await api()
      .get(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("If-None-Match", etag);
    expect(current.status).toBe(304);
    expect(current.headers.etag).toBe(etag);
    const stale = await api()
      .get(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("If-None-Match", '"something-else"');
    expect(stale.status).toBe(200);

    const outside = await api()
      .get(`/api/v1/meetings/${meetingId}/recording`)
      .set(caller.headers)
      .set("Range", `bytes=${size + 10}-${size + 20}`);
    expect(outside.status).toBe(416);
    expect(outside.headers["content-range"]).toBe(`bytes */${size}`);
  });

  it("says the limit in a 413, and every error body carries details", async () => {
    const res = await api()
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "x".repeat(4000), meetingUrl: "https://us02web.zoom.us/j/85012345678" });
    expect(res.status).toBe(413);
    expect(res.body.error.message).toContain("2048 bytes");
    expect(res.body.error.details).toEqual({ maxBytes: 2048 });
    const unauthenticated = await api().get("/api/v1/me");
    expect(unauthenticated.body.error.details).toEqual({});
  });
});
