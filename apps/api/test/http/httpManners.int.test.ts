import request from "supertest";
import { authHeaderFor, type AuthenticatedCaller } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

/** Issue 16, item 8: the smaller HTTP manners a client author relies on. */

let testApp: TestApp;
let caller: AuthenticatedCaller;
beforeAll(async () => {
  testApp = createTestApp({ env: { JSON_BODY_LIMIT: "2kb" } });
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
    expect(JSON.stringify(res.body.error.details)).toContain("limt");
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
