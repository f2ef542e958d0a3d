import { randomUUID } from "node:crypto";
import request from "supertest";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import type { TestApp } from "../support/helpers";
import {
  LEVEL,
  useTestAppWithCapturedLogs,
  type CapturedLogs,
  type LogEntry,
} from "../support/logCapture";

let testApp: TestApp;
let logs: CapturedLogs;
useTestAppWithCapturedLogs((started) => ({ testApp, logs } = started));

/** The request's own log lines, found by the request id the test sent. */
function linesOf(requestId: string): { raw: string[]; entries: LogEntry[] } {
  const raw = logs.lines.filter((line) => line.includes(requestId));
  return { raw, entries: raw.map((line) => JSON.parse(line) as LogEntry) };
}

describe("request log", () => {
  it("logs one short line per request with its route, caller and error code, and no headers", async () => {
    const key = await apiKeyHeaderFor(testApp, { scopes: ["meetings:write"] });
    const keyRow = await testApp.ctx.db.apiKey.findFirstOrThrow({
      where: { organizationId: key.organizationId },
    });
    const session = await authHeaderFor(testApp);
    const badToken = `${key.key.slice(0, -4)}AAAA`;

    const createdId = randomUUID();
    const created = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(key.headers)
      .set("X-Request-Id", createdId)
      .send({ title: "Logged", meetingUrl: "https://meet.google.com/abc-defg-hij" });
    expect(created.status).toBe(201);

    const missingId = randomUUID();
    const missing = await request(testApp.app)
      .get(`/api/v1/meetings/${randomUUID()}`)
      .set(session.headers)
      .set("X-Request-Id", missingId);
    expect(missing.status).toBe(404);

    const refusedId = randomUUID();
    const refused = await request(testApp.app)
      .get("/api/v1/meetings")
      .set("Authorization", `Bearer ${badToken}`)
      .set("X-Request-Id", refusedId);
    expect(refused.status).toBe(401);

    const expected: [string, Record<string, unknown>][] = [
      [
        createdId,
        {
          level: LEVEL.debug,
          method: "POST",
          route: "/api/v1/meetings",
          status: 201,
          organizationId: key.organizationId,
          apiKeyId: keyRow.id,
        },
      ],
      [
        missingId,
        {
          level: LEVEL.info,
          method: "GET",
          route: "/api/v1/meetings/:id",
          status: 404,
          organizationId: session.organizationId,
          userId: session.userId,
          errorCode: "NOT_FOUND",
        },
      ],
      [
        refusedId,
        {
          level: LEVEL.info,
          method: "GET",
          route: "/api/v1/meetings",
          status: 401,
          errorCode: refused.body.error.code,
        },
      ],
    ];
    for (const [requestId, fields] of expected) {
      const { raw, entries } = linesOf(requestId);
      expect(entries).toHaveLength(1);
      const [entry] = entries as [LogEntry];
      expect(entry).toMatchObject({ ...fields, requestId, msg: "request completed" });
      expect(entry.durationMs).toEqual(expect.any(Number));
      if (!("errorCode" in fields)) expect(entry.errorCode).toBeUndefined();
      if (!("organizationId" in fields)) expect(entry.organizationId).toBeUndefined();
      // No headers, request or response objects: only the fields above.
      expect(Object.keys(entry).sort()).toEqual(
        [...Object.keys(fields), "requestId", "msg", "durationMs", "time", "service"].sort(),
      );
      expect(Buffer.byteLength(raw[0]!)).toBeLessThan(400);
    }

    // Header values never reach a line, nor does a credential, valid or not.
    const all = logs.lines.join("\n");
    for (const value of [
      "nosniff",
      "default-src",
      "max-age=",
      "application/json",
      "supertest",
      key.key,
      badToken,
      session.token,
    ]) {
      expect(all).not.toContain(value);
    }
  });
});
