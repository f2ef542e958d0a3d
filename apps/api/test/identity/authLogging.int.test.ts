import { Writable } from "node:stream";
import { uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { createLogger } from "../../src/lib/logger";
import { generateTestKeyPair, signClerkToken } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

/**
 * A refused session token says why in the server's log (expired, wrong key, missing claim, not
 * configured), at info level, and the token itself appears in no log line.
 */

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
  detail?: string;
  sessionKey?: string;
  requestId?: string;
}

function capturingApp(env: Record<string, string> = {}): { testApp: TestApp; output: string[] } {
  const output: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output.push(chunk.toString());
      done();
    },
  });
  const testApp = createTestApp({ env, logger: createLogger("debug", {}, sink) });
  return { testApp, output };
}

const rejections = (output: string[]): LogLine[] =>
  output
    .join("")
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.msg.startsWith("session token rejected"));

/** Neither the token nor any of its parts (header, claims, signature) is in the log. */
function expectTokenAbsent(output: string[], token: string): void {
  const text = output.join("");
  expect(text.length).toBeGreaterThan(0);
  for (const part of [token, ...token.split(".")]) expect(text).not.toContain(part);
}

describe("authenticate: why a session token was refused", () => {
  let app: { testApp: TestApp; output: string[] };
  beforeEach(() => {
    app = capturingApp();
  });
  afterEach(() => app.testApp.close());

  const me = (token: string) =>
    request(app.testApp.app).get("/api/v1/me").set("Authorization", `Bearer ${token}`);

  it("logs an expired token as token-expired, without the token", async () => {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: `org_${uniqueSuffix()}`,
      issuedAt: new Date(Date.now() - 10 * 60_000),
    });
    const res = await me(token);
    expect(res.status).toBe(401);
    const [line, ...others] = rejections(app.output);
    expect(others).toHaveLength(0);
    expect(line).toMatchObject({
      level: 30,
      reason: "token-expired",
      sessionKey: "CLERK_JWT_KEY",
      requestId: res.body.requestId,
    });
    expect(line!.detail).toMatch(/expired/);
    expectTokenAbsent(app.output, token);
  });

  it("logs a token signed with another key as an invalid signature, without the token", async () => {
    const token = signClerkToken({
      userId: `user_${uniqueSuffix()}`,
      orgId: `org_${uniqueSuffix()}`,
      privateKey: generateTestKeyPair().privateKey,
    });
    expect((await me(token)).status).toBe(401);
    expect(rejections(app.output)).toEqual([
      expect.objectContaining({ reason: "token-invalid-signature", sessionKey: "CLERK_JWT_KEY" }),
    ]);
    expectTokenAbsent(app.output, token);
  });

  it("logs a session without an organization as a missing claim", async () => {
    const token = signClerkToken({ userId: `user_${uniqueSuffix()}`, orgId: null });
    expect((await me(token)).status).toBe(403);
    const [line] = rejections(app.output);
    expect(line).toMatchObject({ reason: "missing-claim" });
    expect(line!.detail).toMatch(/organization/);
    expectTokenAbsent(app.output, token);
  });

  it("logs a malformed token without echoing it", async () => {
    const token = `garbage${uniqueSuffix()}.${uniqueSuffix()}notjson.${uniqueSuffix()}`;
    expect((await me(token)).status).toBe(401);
    expect(rejections(app.output)).toEqual([expect.objectContaining({ reason: "token-invalid" })]);
    expectTokenAbsent(app.output, token);
  });
});

describe("authenticate without any session key", () => {
  it("answers SESSION_AUTH_NOT_CONFIGURED naming the settings and dev:token, and logs why", async () => {
    const { testApp, output } = capturingApp({ CLERK_JWT_KEY: "", CLERK_AUTHORIZED_PARTIES: "" });
    try {
      const token = signClerkToken({ userId: "user_x", orgId: "org_x" });
      const res = await request(testApp.app)
        .get("/api/v1/me")
        .set("Authorization", `Bearer ${token}`);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("SESSION_AUTH_NOT_CONFIGURED");
      expect(res.body.error.message).toContain("CLERK_JWT_KEY");
      expect(res.body.error.message).toContain("CLERK_SECRET_KEY");
      expect(res.body.error.message).toContain("pnpm -s dev:token");
      expect(res.body.error.details).toEqual({
        settings: ["CLERK_JWT_KEY", "CLERK_SECRET_KEY"],
        devToken: "pnpm -s dev:token --org acme --role admin",
      });
      expect(rejections(output)).toEqual([
        expect.objectContaining({ reason: "session-auth-not-configured", sessionKey: "none" }),
      ]);
      expectTokenAbsent(output, token);
    } finally {
      await testApp.close();
    }
  });

  it("does not point a production server's callers at dev:token", async () => {
    const { testApp } = capturingApp({
      CLERK_JWT_KEY: "",
      CLERK_AUTHORIZED_PARTIES: "",
      NODE_ENV: "production",
    });
    try {
      const res = await request(testApp.app)
        .get("/api/v1/me")
        .set("Authorization", `Bearer ${signClerkToken({ userId: "user_x", orgId: "org_x" })}`);
      expect(res.body.error.code).toBe("SESSION_AUTH_NOT_CONFIGURED");
      expect(res.body.error.message).toContain("CLERK_JWT_KEY");
      expect(res.body.error.message).not.toContain("dev:token");
    } finally {
      await testApp.close();
    }
  });
});
