import { createMeeting, createOrganization, uniqueSuffix } from "@zigznote/database/testing";
import express from "express";
import request from "supertest";
import { requireScope } from "../../src/http/auth";
import { authenticate } from "../../src/identity";
import { errorHandler } from "../../src/http/errorHandler";
import { requestId } from "../../src/http/requestId";
import { formatApiKey } from "../../src/identity/apiKeyService";
import { NotFoundError } from "@zigznote/shared";
import { apiKeyHeaderFor, authHeaderFor, createApiKey } from "../support/auth";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";

let testApp: TestApp;
const clock = new ManualClock();
beforeAll(() => {
  testApp = createTestApp({ clock });
});
afterAll(() => testApp.close());

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

describe("/api/v1/api-keys", () => {
  it("creates a key for an admin, returns it once, and the key works", async () => {
    const admin = await authHeaderFor(testApp, { role: "admin" });
    const created = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "CI", scopes: ["meetings:read", "bots:read"] });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^zn_live_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}$/);
    expect(created.body.key.slice(8, 20)).toBe(created.body.prefix);
    expect(created.body).not.toHaveProperty("secretHash");

    const row = await testApp.ctx.db.apiKey.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(row.secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(row.secretHash).not.toContain(created.body.key.slice(21));

    const me = await request(testApp.app).get("/api/v1/me").set(bearer(created.body.key));
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      kind: "apiKey",
      organization: { id: admin.organizationId },
      user: null,
      apiKey: { id: created.body.id, name: "CI", prefix: created.body.prefix },
      role: null,
      scopes: ["meetings:read", "bots:read"],
    });
  });

  it("lists keys without the secret or its hash", async () => {
    const admin = await authHeaderFor(testApp);
    const created = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "listed", scopes: ["meetings:read"] });
    const list = await request(testApp.app).get("/api/v1/api-keys").set(admin.headers);
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    const [item] = list.body.data;
    expect(Object.keys(item).sort()).toEqual(
      [
        "createdAt",
        "createdById",
        "expiresAt",
        "id",
        "lastUsedAt",
        "name",
        "prefix",
        "revokedAt",
        "scopes",
      ].sort(),
    );
    expect(JSON.stringify(list.body)).not.toContain(created.body.key.slice(21, 53));
  });

  it("refuses members (403 ADMIN_REQUIRED) and API keys, even with every scope", async () => {
    const member = await authHeaderFor(testApp, { role: "member" });
    const asMember = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set(member.headers)
      .send({ name: "x", scopes: ["meetings:read"] });
    expect(asMember.status).toBe(403);
    expect(asMember.body.error.code).toBe("ADMIN_REQUIRED");

    const { headers } = await apiKeyHeaderFor(testApp, {
      organizationId: member.organizationId,
      scopes: ["meetings:read", "meetings:write", "billing:write"],
    });
    const asKey = await request(testApp.app).get("/api/v1/api-keys").set(headers);
    expect(asKey.status).toBe(403);
    expect(asKey.body.error.code).toBe("ADMIN_REQUIRED");
  });

  it("validates the body (unknown scope -> 400)", async () => {
    const admin = await authHeaderFor(testApp);
    const res = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "x", scopes: ["everything"] });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("VALIDATION_ERROR");
  });

  it("refuses an unknown field (a misspelled expires_at) with 400, naming it, and creates no key", async () => {
    const admin = await authHeaderFor(testApp);
    const res = await request(testApp.app)
      .post("/api/v1/api-keys")
      .set(admin.headers)
      .send({ name: "CI", scopes: ["meetings:read"], expires_at: "2027-01-01T00:00:00Z" });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: "VALIDATION_ERROR",
        message: expect.any(String),
        details: {
          fields: [
            {
              path: "expires_at",
              message: expect.stringContaining("expires_at"),
              code: "unrecognized_keys",
            },
          ],
        },
      },
      requestId: expect.any(String),
    });
    const keys = await testApp.ctx.db.apiKey.count({
      where: { organizationId: admin.organizationId },
    });
    expect(keys).toBe(0);
  });

  it("revokes a key: the next request with it gets 401 API_KEY_REVOKED", async () => {
    const admin = await authHeaderFor(testApp);
    const key = await createApiKey(testApp, {
      organizationId: admin.organizationId,
      scopes: ["meetings:read"],
    });
    expect((await request(testApp.app).get("/api/v1/me").set(bearer(key))).status).toBe(200);
    const [listed] = (await request(testApp.app).get("/api/v1/api-keys").set(admin.headers)).body
      .data;
    const revoked = await request(testApp.app)
      .delete(`/api/v1/api-keys/${listed.id}`)
      .set(admin.headers);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).not.toBeNull();
    const after = await request(testApp.app).get("/api/v1/me").set(bearer(key));
    expect(after.status).toBe(401);
    expect(after.body.error.code).toBe("API_KEY_REVOKED");
  });

  it("revokes on every instance sharing Redis, even one holding the key in its cache", async () => {
    const shared = { REDIS_KEY_PREFIX: `test-${uniqueSuffix()}` };
    const a = createTestApp({ env: shared, redis: true });
    const b = createTestApp({ env: shared, redis: true });
    try {
      const admin = await authHeaderFor(a);
      const created = await request(a.app)
        .post("/api/v1/api-keys")
        .set(admin.headers)
        .send({ name: "shared", scopes: ["meetings:read"] });
      // b verifies the key once, which caches its row.
      expect((await request(b.app).get("/api/v1/me").set(bearer(created.body.key))).status).toBe(
        200,
      );
      const revoked = await request(a.app)
        .delete(`/api/v1/api-keys/${created.body.id}`)
        .set(admin.headers);
      expect(revoked.status).toBe(200);
      const onB = await request(b.app).get("/api/v1/me").set(bearer(created.body.key));
      expect(onB.status).toBe(401);
      expect(onB.body.error.code).toBe("API_KEY_REVOKED");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("revokes a key even when Redis cannot take the announcement, and tells the other instances once it can", async () => {
    const shared = { REDIS_KEY_PREFIX: `test-${uniqueSuffix()}` };
    const a = createTestApp({ env: shared, redis: true });
    const b = createTestApp({ env: shared, redis: true });
    try {
      const admin = await authHeaderFor(a);
      const created = await request(a.app)
        .post("/api/v1/api-keys")
        .set(admin.headers)
        .send({ name: "shared", scopes: ["meetings:read"] });
      // b verifies the key once, which caches its row.
      expect((await request(b.app).get("/api/v1/me").set(bearer(created.body.key))).status).toBe(
        200,
      );
      // a's Redis refuses the marker once (b still reads Redis: it would trust its copy).
      const set = jest
        .spyOn(a.ctx.redis!, "set")
        .mockRejectedValueOnce(new Error("Connection is closed."));
      let revoked;
      try {
        revoked = await request(a.app)
          .delete(`/api/v1/api-keys/${created.body.id}`)
          .set(admin.headers);
      } finally {
        set.mockRestore();
      }
      // The revocation stands at once: a leaked key must be revocable whatever Redis does.
      expect(revoked.status).toBe(200);
      expect(revoked.body.revokedAt).not.toBeNull();
      const row = await a.ctx.db.apiKey.findUniqueOrThrow({ where: { id: created.body.id } });
      expect(row.revokedAt).not.toBeNull();
      expect((await request(a.app).get("/api/v1/me").set(bearer(created.body.key))).status).toBe(
        401,
      );
      // a tries the marker again a second later: b then reads the row and refuses the key.
      const deadline = Date.now() + 5000;
      let onB = await request(b.app).get("/api/v1/me").set(bearer(created.body.key));
      while (onB.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        onB = await request(b.app).get("/api/v1/me").set(bearer(created.body.key));
      }
      expect(onB.status).toBe(401);
      expect(onB.body.error.code).toBe("API_KEY_REVOKED");
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("reads a cached key's row again when Redis cannot tell whether it was revoked", async () => {
    const withRedis = createTestApp({ redis: true });
    try {
      const { key } = await apiKeyHeaderFor(withRedis, { scopes: ["meetings:read"] });
      expect((await request(withRedis.app).get("/api/v1/me").set(bearer(key))).status).toBe(200);
      // Revoked behind the app's back: no marker in Redis, so the cached copy still answers.
      const keyId = key.split("_")[2]!;
      await withRedis.ctx.db
        .$executeRaw`UPDATE api_keys SET revoked_at = now() WHERE prefix = ${keyId}`;
      expect((await request(withRedis.app).get("/api/v1/me").set(bearer(key))).status).toBe(200);
      // When the marker cannot be read, the row is: the revocation shows.
      const redis = withRedis.ctx.redis!;
      const exists = jest
        .spyOn(redis, "exists")
        .mockRejectedValueOnce(new Error("Connection is closed."));
      try {
        const refused = await request(withRedis.app).get("/api/v1/me").set(bearer(key));
        expect(refused.status).toBe(401);
        expect(refused.body.error.code).toBe("API_KEY_REVOKED");
        expect(exists).toHaveBeenCalledTimes(1);
      } finally {
        exists.mockRestore();
      }
    } finally {
      await withRedis.close();
    }
  });

  it("answers 404 when revoking another organization's key", async () => {
    const adminA = await authHeaderFor(testApp);
    const orgB = await createOrganization(testApp.ctx.db);
    const keyB = await createApiKey(testApp, {
      organizationId: orgB.id,
      scopes: ["meetings:read"],
    });
    const rowB = await testApp.ctx.db.apiKey.findUniqueOrThrow({
      where: { prefix: keyB.slice(8, 20) },
    });
    const res = await request(testApp.app)
      .delete(`/api/v1/api-keys/${rowB.id}`)
      .set(adminA.headers);
    expect(res.status).toBe(404);
    expect((await request(testApp.app).get("/api/v1/me").set(bearer(keyB))).status).toBe(200);
  });

  it("refuses an expired key with 401 API_KEY_EXPIRED", async () => {
    const org = await createOrganization(testApp.ctx.db);
    const key = await createApiKey(testApp, {
      organizationId: org.id,
      scopes: ["meetings:read"],
      expiresAt: new Date(clock.now().getTime() + 60_000),
    });
    expect((await request(testApp.app).get("/api/v1/me").set(bearer(key))).status).toBe(200);
    clock.advance(61_000);
    const res = await request(testApp.app).get("/api/v1/me").set(bearer(key));
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe("API_KEY_EXPIRED");
  });

  it("refuses a wrong secret and a malformed key with the same 401 INVALID_API_KEY", async () => {
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    // Well-formed (valid checksum) but with another secret: reaches the database and fails there.
    const wrong = formatApiKey(key.slice(8, 20), "x".repeat(32));
    const wrongSecret = await request(testApp.app).get("/api/v1/me").set(bearer(wrong));
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error.code).toBe("INVALID_API_KEY");
    const malformed = await request(testApp.app).get("/api/v1/me").set(bearer("zn_live_nope"));
    expect(malformed.body.error.code).toBe("INVALID_API_KEY");
  });

  it("records lastUsedAt at most once per interval", async () => {
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const prefix = key.slice(8, 20);
    const lastUsed = async () =>
      (await testApp.ctx.db.apiKey.findUniqueOrThrow({ where: { prefix } })).lastUsedAt;
    await request(testApp.app).get("/api/v1/me").set(bearer(key));
    const first = await lastUsed();
    expect(first?.getTime()).toBe(clock.now().getTime());
    clock.advance(30_000);
    await request(testApp.app).get("/api/v1/me").set(bearer(key));
    expect((await lastUsed())?.getTime()).toBe(first?.getTime());
    clock.advance(31_000);
    await request(testApp.app).get("/api/v1/me").set(bearer(key));
    expect((await lastUsed())?.getTime()).toBe(clock.now().getTime());
  });
});

describe("scopes and tenancy on key-reachable routes", () => {
  // Meetings routes arrive with their own issue; this router uses the same guards they will.
  function meetingsApp(): express.Express {
    const app = express();
    app.use(requestId);
    const router = express.Router();
    router.use(authenticate(testApp.ctx));
    router.get("/meetings/:id", requireScope("meetings:read"), async (req, res) => {
      const meeting = await testApp.ctx.db.meeting.findFirst({
        where: { id: String(req.params.id), organizationId: req.auth.organizationId! },
      });
      if (!meeting) throw new NotFoundError("Meeting not found");
      res.json({ id: meeting.id });
    });
    router.post("/meetings", requireScope("meetings:write"), (_req, res) => {
      res.status(201).json({});
    });
    app.use("/api/v1", express.json(), router);
    app.use(errorHandler(testApp.ctx.logger));
    return app;
  }

  it("gives a key of organization A 404 on organization B's meeting", async () => {
    const app = meetingsApp();
    const a = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const orgB = await createOrganization(testApp.ctx.db);
    const meetingA = await createMeeting(testApp.ctx.db, { organizationId: a.organizationId });
    const meetingB = await createMeeting(testApp.ctx.db, { organizationId: orgB.id });
    expect((await request(app).get(`/api/v1/meetings/${meetingA.id}`).set(a.headers)).status).toBe(
      200,
    );
    const res = await request(app).get(`/api/v1/meetings/${meetingB.id}`).set(a.headers);
    expect(res.status).toBe(404);
  });

  it("gives a read-only key 403 INSUFFICIENT_SCOPE on a write", async () => {
    const app = meetingsApp();
    const { headers } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const res = await request(app).post("/api/v1/meetings").set(headers).send({});
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      code: "INSUFFICIENT_SCOPE",
      details: { requiredScope: "meetings:write" },
    });
  });

  it("gives members every scope but billing:write", async () => {
    const member = await authHeaderFor(testApp, { role: "member" });
    const res = await request(testApp.app).get("/api/v1/me").set(member.headers);
    expect(res.body.scopes).toEqual([
      "meetings:read",
      "meetings:write",
      "bots:read",
      "bots:write",
      "billing:read",
    ]);
  });
});

describe("OpenAPI document", () => {
  it("documents /api/v1/me and /api/v1/api-keys with bearer security", async () => {
    const res = await request(testApp.app).get("/openapi.json");
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(["/api/v1/me", "/api/v1/api-keys", "/api/v1/api-keys/{id}"]),
    );
    expect(res.body.paths["/api/v1/api-keys"].post.security).toEqual([{ bearerAuth: [] }]);
    expect(JSON.stringify(res.body.components.schemas.CreatedApiKey)).toContain('"key"');
  });
});
