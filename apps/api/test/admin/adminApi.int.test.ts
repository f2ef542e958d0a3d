import {
  createMeeting,
  createOrganizationWithAdmin,
  createSubscription,
  uniqueSuffix,
} from "@zigznote/database/testing";
import request from "supertest";
import { checkPlanViolations } from "../../src/billing";
import { ManualClock } from "../../src/lib/clock";
import {
  apiKeyHeaderFor,
  authHeaderFor,
  signClerkToken,
  type AuthenticatedCaller,
} from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";
import { SCOPES } from "../../src/http/scopes";

interface OpenCount {
  type: string;
  action: string;
  count: number;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
// Mid-month, so that moving the clock by hours or days never starts a new month (which would
// resolve meeting violations by itself).
const START = new Date(Date.UTC(2026, 10, 10, 12, 0, 0));

let clock: ManualClock;
let testApp: TestApp;
beforeAll(() => {
  clock = new ManualClock(START);
  testApp = createTestApp({ clock });
});
afterAll(() => testApp.close());

/** A platform admin (by the session claim), member of an organization of its own. */
async function platformAdmin(app: TestApp = testApp) {
  const caller = await authHeaderFor(app);
  const headers = (claims: Record<string, unknown> = { metadata: { platformAdmin: true } }) => ({
    Authorization: `Bearer ${signClerkToken({
      userId: caller.userClerkId,
      orgId: caller.orgClerkId,
      claims,
    })}`,
  });
  return { ...caller, adminHeaders: headers };
}

/** An organization on the free plan (10 meetings a month) with 12 meetings: over its limit. */
async function organizationOverMeetingLimit(name = `Over ${uniqueSuffix()}`) {
  const db = testApp.ctx.db;
  const { organization, user } = await createOrganizationWithAdmin(db, { name });
  for (let i = 0; i < 12; i += 1) {
    await createMeeting(db, { organizationId: organization.id, createdAt: clock.now() });
  }
  await checkPlanViolations(
    { db, settings: testApp.ctx.modules.billing.deps.settings },
    { organizationId: organization.id, now: clock.now() },
  );
  await testApp.ctx.notices.idle();
  const violation = await db.planViolation.findFirstOrThrow({
    where: { organizationId: organization.id, type: "meetings", resolvedAt: null },
  });
  return { organization, user, violation };
}

async function auditCount(): Promise<number> {
  return testApp.ctx.db.adminAuditEntry.count();
}

function adminRoutePaths() {
  return testApp.ctx.routes.api
    .filter((route) => route.path.startsWith("/api/v1/admin"))
    .map((route) => ({
      method: route.method,
      path: route.path
        .replace(":id", "00000000-0000-4000-8000-000000000000")
        .replace(":jobName", "deliverNotifications"),
    }));
}

function send(method: string, path: string) {
  const agent = request(testApp.app);
  return method === "get" ? agent.get(path) : agent.post(path).send({});
}

describe("who reaches /api/v1/admin", () => {
  it("declares every admin route for platform admins only", () => {
    const routes = adminRoutePaths();
    expect(routes.length).toBe(13);
  });

  it("refuses signed-out callers (401), organization admins and API keys (403) on every route", async () => {
    const orgAdmin = await authHeaderFor(testApp, { role: "admin" });
    const key = await apiKeyHeaderFor(testApp, { scopes: SCOPES });
    const before = await auditCount();
    for (const { method, path } of adminRoutePaths()) {
      const signedOut = await send(method, path);
      expect({ path, status: signedOut.status }).toEqual({ path, status: 401 });

      const asOrgAdmin = await send(method, path).set(orgAdmin.headers);
      expect({ path, status: asOrgAdmin.status, code: asOrgAdmin.body.error?.code }).toEqual({
        path,
        status: 403,
        code: "PLATFORM_ADMIN_REQUIRED",
      });

      const asKey = await send(method, path).set(key.headers);
      expect({ path, status: asKey.status, details: asKey.body.error?.details }).toEqual({
        path,
        status: 403,
        details: { reason: "api_key" },
      });
    }
    expect(await auditCount()).toBe(before);
  });

  it("lets in users listed in PLATFORM_ADMIN_USER_IDS and users with the claim, not a claim of another shape", async () => {
    const caller = await authHeaderFor(testApp);
    const listed = createTestApp({ clock, env: { PLATFORM_ADMIN_USER_IDS: caller.userClerkId } });
    try {
      const byList = await request(listed.app).get("/api/v1/admin/overview").set(caller.headers);
      expect(byList.status).toBe(200);
    } finally {
      await listed.close();
    }

    const admin = await platformAdmin();
    for (const claims of [{ metadata: { platformAdmin: true } }, { platform_admin: true }]) {
      const ok = await request(testApp.app)
        .get("/api/v1/admin/overview")
        .set(admin.adminHeaders(claims));
      expect(ok.status).toBe(200);
    }
    for (const claims of [{ metadata: { platformAdmin: "true" } }, { platform_admin: 1 }, {}]) {
      const refused = await request(testApp.app)
        .get("/api/v1/admin/overview")
        .set(admin.adminHeaders(claims));
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("PLATFORM_ADMIN_REQUIRED");
    }
  });
});

describe("session from the __session cookie", () => {
  it("authenticates reads; writes need the API's own origin or an allowed one (CSRF)", async () => {
    const allowed = "https://console.example.com";
    const app = createTestApp({ clock, env: { ADMIN_ALLOWED_ORIGINS: allowed } });
    try {
      const admin = await platformAdmin(app);
      const cookie = () => {
        const token = admin.adminHeaders().Authorization.slice("Bearer ".length);
        return `theme=dark; __session=${token}`;
      };
      const { organization } = await createOrganizationWithAdmin(app.ctx.db);
      const recheck = `/api/v1/admin/organizations/${organization.id}/recheck-violations`;

      const read = await request(app.app).get("/api/v1/admin/overview").set("Cookie", cookie());
      expect(read.status).toBe(200);

      const before = await app.ctx.db.adminAuditEntry.count();
      const noOrigin = await request(app.app)
        .post(recheck)
        .set("Cookie", cookie())
        .send({ reason: "check" });
      expect(noOrigin.status).toBe(403);
      expect(noOrigin.body.error.code).toBe("CSRF_ORIGIN_REFUSED");
      const foreign = await request(app.app)
        .post(recheck)
        .set("Host", "api.zigznote.test")
        .set("Origin", "https://evil.example")
        .set("Cookie", cookie())
        .send({ reason: "check" });
      expect(foreign.status).toBe(403);
      expect(foreign.body.error).toMatchObject({
        code: "CSRF_ORIGIN_REFUSED",
        details: { origin: "https://evil.example" },
      });
      expect(await app.ctx.db.adminAuditEntry.count()).toBe(before);

      const own = await request(app.app)
        .post(recheck)
        .set("Host", "api.zigznote.test")
        .set("Origin", "http://api.zigznote.test")
        .set("Cookie", cookie())
        .send({ reason: "check" });
      expect(own.status).toBe(200);
      const listed = await request(app.app)
        .post(recheck)
        .set("Origin", allowed)
        .set("Cookie", cookie())
        .send({ reason: "check" });
      expect(listed.status).toBe(200);

      // The rule is the cookie's, on every route; a header-authenticated write is unaffected.
      const meeting = await request(app.app)
        .post("/api/v1/meetings")
        .set("Origin", "https://evil.example")
        .set("Cookie", cookie())
        .send({ title: "x", meetingUrl: "https://zoom.us/j/12345678901" });
      expect(meeting.status).toBe(403);
      expect(meeting.body.error.code).toBe("CSRF_ORIGIN_REFUSED");
      const byHeader = await request(app.app)
        .post(recheck)
        .set("Origin", "https://evil.example")
        .set(admin.adminHeaders())
        .send({ reason: "check" });
      expect(byHeader.status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it("behind a trusted proxy that rewrites Host, the API's own origin is the forwarded one", async () => {
    // nginx's default proxy_pass sends the upstream's address as Host and the browser's in
    // X-Forwarded-Host: the console's own writes must pass, and only a trusted proxy counts.
    const proxied = {
      Host: "10.0.0.7:3001",
      "X-Forwarded-Host": "admin.zigznote.test",
      "X-Forwarded-Proto": "https",
      Origin: "https://admin.zigznote.test",
    };
    const recheckAs = async (app: TestApp) => {
      const admin = await platformAdmin(app);
      const token = admin.adminHeaders().Authorization.slice("Bearer ".length);
      const { organization } = await createOrganizationWithAdmin(app.ctx.db);
      const before = await app.ctx.db.adminAuditEntry.count();
      const res = await request(app.app)
        .post(`/api/v1/admin/organizations/${organization.id}/recheck-violations`)
        .set(proxied)
        .set("Cookie", `__session=${token}`)
        .send({ reason: "check" });
      return { res, written: (await app.ctx.db.adminAuditEntry.count()) - before };
    };

    const behindProxy = createTestApp({ clock, env: { TRUST_PROXY: "loopback" } });
    try {
      const { res, written } = await recheckAs(behindProxy);
      expect(res.status).toBe(200);
      expect(written).toBe(1);
    } finally {
      await behindProxy.close();
    }
    // Without TRUST_PROXY the headers are anybody's: the Host is the own origin, not them.
    const { res, written } = await recheckAs(testApp);
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({
      code: "CSRF_ORIGIN_REFUSED",
      details: { origin: "https://admin.zigznote.test" },
    });
    expect(written).toBe(0);
  });

  it("lets a listed origin's page send and read cookie-authenticated requests across origins (CORS), and no other's", async () => {
    const allowed = "https://console.example.com";
    const app = createTestApp({ clock, env: { ADMIN_ALLOWED_ORIGINS: allowed } });
    try {
      const admin = await platformAdmin(app);
      const token = admin.adminHeaders().Authorization.slice("Bearer ".length);
      const { organization } = await createOrganizationWithAdmin(app.ctx.db);
      const recheck = `/api/v1/admin/organizations/${organization.id}/recheck-violations`;
      const preflight = (origin: string) =>
        request(app.app)
          .options(recheck)
          .set("Origin", origin)
          .set("Access-Control-Request-Method", "POST")
          .set("Access-Control-Request-Headers", "content-type, idempotency-key");

      const listed = await preflight(allowed);
      expect(listed.status).toBe(204);
      expect(listed.headers).toMatchObject({
        "access-control-allow-origin": allowed,
        "access-control-allow-credentials": "true",
        "access-control-max-age": "600",
      });
      expect(listed.headers["access-control-allow-methods"]).toContain("POST");
      expect(listed.headers["access-control-allow-headers"]).toMatch(/Content-Type/);
      expect(listed.headers["access-control-allow-headers"]).toMatch(/Idempotency-Key/);

      const write = await request(app.app)
        .post(recheck)
        .set("Origin", allowed)
        .set("Cookie", `__session=${token}`)
        .send({ reason: "check" });
      expect(write.status).toBe(200);
      expect(write.headers["access-control-allow-origin"]).toBe(allowed);
      expect(write.headers["access-control-allow-credentials"]).toBe("true");
      expect(write.headers["access-control-expose-headers"]).toMatch(/X-Request-Id/);

      // Any other origin gets no CORS headers: its preflight is a plain 405, its answers unreadable.
      const other = await preflight("https://evil.example");
      expect(other.status).toBe(405);
      expect(other.headers["access-control-allow-origin"]).toBeUndefined();
      const read = await request(app.app)
        .get("/api/v1/admin/overview")
        .set("Origin", "https://evil.example")
        .set("Cookie", `__session=${token}`);
      expect(read.headers["access-control-allow-origin"]).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it("prefers the Authorization header, and refuses an API key in the cookie", async () => {
    const key = await apiKeyHeaderFor(testApp, { scopes: SCOPES });
    const res = await request(testApp.app).get("/api/v1/me").set("Cookie", `__session=${key.key}`);
    expect(res.status).toBe(401);
    const member = await authHeaderFor(testApp, { role: "member" });
    const both = await request(testApp.app)
      .get("/api/v1/me")
      .set("Cookie", "__session=not-a-token")
      .set(member.headers);
    expect(both.status).toBe(200);
    expect(both.body.role).toBe("member");
  });
});

describe("reads", () => {
  it("finds an organization over its meeting limit through the filters and shows its detail", async () => {
    const admin = await platformAdmin();
    const name = `Findable ${uniqueSuffix()}`;
    const { organization, violation } = await organizationOverMeetingLimit(name);

    const page = await request(testApp.app)
      .get("/api/v1/admin/violations")
      .query({ type: "meetings", status: "open", q: name.toUpperCase().slice(0, 14) })
      .set(admin.adminHeaders());
    expect(page.status).toBe(200);
    expect(page.body.data).toContainEqual(
      expect.objectContaining({
        id: violation.id,
        organizationId: organization.id,
        organizationName: name,
        type: "meetings",
        action: "read_only",
        status: "open",
        limit: 10,
        currentUsage: 12,
        version: 0,
      }),
    );
    const byId = await request(testApp.app)
      .get("/api/v1/admin/violations")
      .query({ q: organization.id })
      .set(admin.adminHeaders());
    expect(byId.body.data.map((v: { id: string }) => v.id)).toEqual([violation.id]);

    const detail = await request(testApp.app)
      .get(`/api/v1/admin/organizations/${organization.id}`)
      .set(admin.adminHeaders());
    expect(detail.status).toBe(200);
    expect(detail.body.organization).toMatchObject({ id: organization.id, planSlug: "free" });
    expect(detail.body.usage).toContainEqual({ limit: "meetingsPerMonth", used: 12, max: 10 });
    expect(detail.body.violations[0].history).toEqual([
      expect.objectContaining({ event: "detected", actorUserId: null }),
    ]);
    expect(detail.body.members).toHaveLength(1);
    expect(detail.body.notices).toContainEqual(
      expect.objectContaining({ type: "plan.violation", status: "sent" }),
    );

    const missing = await request(testApp.app)
      .get(`/api/v1/admin/organizations/00000000-0000-4000-8000-000000000000`)
      .set(admin.adminHeaders());
    expect(missing.status).toBe(404);
  });

  it("pages violations with cursors, sorted by grace end or detection, without repeats", async () => {
    const admin = await platformAdmin();
    const prefix = `Paged ${uniqueSuffix()}`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      ids.push((await organizationOverMeetingLimit(`${prefix} ${i}`)).violation.id);
    }
    for (const sort of ["detectedAt", "graceEndsAt"]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await request(testApp.app)
          .get("/api/v1/admin/violations")
          .query({ q: prefix, sort, limit: 2, ...(cursor ? { cursor } : {}) })
          .set(admin.adminHeaders());
        expect(res.status).toBe(200);
        seen.push(...res.body.data.map((v: { id: string }) => v.id));
        cursor = res.body.nextCursor ?? undefined;
      } while (cursor);
      expect([...seen].sort()).toEqual([...ids].sort());
    }
    const bad = await request(testApp.app)
      .get("/api/v1/admin/violations")
      .query({ cursor: "bm90LW91cnM" })
      .set(admin.adminHeaders());
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("INVALID_CURSOR");
  });

  it("counts what the overview shows", async () => {
    const admin = await platformAdmin();
    const before = await request(testApp.app)
      .get("/api/v1/admin/overview")
      .set(admin.adminHeaders());
    await organizationOverMeetingLimit();
    const { organization } = await createOrganizationWithAdmin(testApp.ctx.db);
    await createSubscription(testApp.ctx.db, {
      organizationId: organization.id,
      status: "past_due",
      graceEndsAt: new Date(clock.now().getTime() + 12 * HOUR_MS),
    });
    const after = await request(testApp.app)
      .get("/api/v1/admin/overview")
      .set(admin.adminHeaders());
    expect(after.status).toBe(200);
    const openMeetings = (body: { violations: { open: OpenCount[] } }): number =>
      body.violations.open.find(
        (entry) => entry.type === "meetings" && entry.action === "read_only",
      )?.count ?? 0;
    expect(openMeetings(after.body)).toBe(openMeetings(before.body) + 1);
    expect(after.body.subscriptions.pastDue).toBe(before.body.subscriptions.pastDue + 1);
    expect(after.body.subscriptions.graceEndingIn24h).toBe(
      before.body.subscriptions.graceEndingIn24h + 1,
    );
    expect(after.body.organizations.total).toBe(before.body.organizations.total + 2);
    expect(after.body.violations.overTime).toHaveLength(30);
    expect(after.body.violations.overTime.at(-1)).toMatchObject({ day: "2026-11-10" });
    expect(after.body.jobs.map((job: { jobName: string }) => job.jobName)).toContain(
      "deliverNotifications",
    );
  });
});

/** POSTs a "Weekly" meeting on a fresh Zoom link as `caller` (the write guard decides). */
function createWeeklyMeeting(caller: AuthenticatedCaller) {
  return request(testApp.app)
    .post("/api/v1/meetings")
    .set(caller.headers)
    .send({
      title: "Weekly",
      meetingUrl: `https://zoom.us/j/${Math.floor(1e10 + Math.random() * 8e10)}`,
    });
}

describe("actions", () => {
  it("waive: not enforced by the write guard until its date, enforced again after it", async () => {
    const admin = await platformAdmin();
    const { organization, violation } = await organizationOverMeetingLimit();
    const owner = await authHeaderFor(testApp, { organizationId: organization.id });
    const createMeetingAsOwner = () => createWeeklyMeeting(owner);

    const refused = await createMeetingAsOwner();
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("PLAN_LIMIT_MEETINGS");

    const before = await auditCount();
    const until = new Date(clock.now().getTime() + HOUR_MS);
    const waived = await request(testApp.app)
      .post(`/api/v1/admin/violations/${violation.id}/waive`)
      .set(admin.adminHeaders())
      .send({ reason: "Sales promised a week", expectedVersion: 0, until: until.toISOString() });
    expect(waived.status).toBe(200);
    expect(waived.body.violation).toMatchObject({
      status: "waived",
      waivedUntil: until.toISOString(),
      action: "read_only",
    });
    expect(waived.body.violation.version).toBeGreaterThan(0);
    expect(await auditCount()).toBe(before + 1);

    expect((await createMeetingAsOwner()).status).toBe(201);

    clock.advance(2 * HOUR_MS);
    const again = await createMeetingAsOwner();
    expect(again.status).toBe(403);
    expect(again.body.error.code).toBe("PLAN_LIMIT_MEETINGS");
    const listed = await request(testApp.app)
      .get("/api/v1/admin/violations")
      .query({ q: organization.id })
      .set(admin.adminHeaders());
    expect(listed.body.data[0]).toMatchObject({ status: "open", waivedUntil: until.toISOString() });
    clock.set(START);
  });

  it("extend-grace: grace_period until then, one audit row with before and after, history kept", async () => {
    const admin = await platformAdmin();
    const { organization, violation } = await organizationOverMeetingLimit();
    const graceEndsAt = new Date(clock.now().getTime() + 3 * DAY_MS).toISOString();
    const before = await auditCount();
    const res = await request(testApp.app)
      .post(`/api/v1/admin/violations/${violation.id}/extend-grace`)
      .set(admin.adminHeaders())
      .send({ reason: "Upgrading next week", expectedVersion: violation.version, graceEndsAt });
    expect(res.status).toBe(200);
    expect(res.body.violation).toMatchObject({ action: "grace_period", graceEndsAt });
    expect(await auditCount()).toBe(before + 1);

    const entry = await testApp.ctx.db.adminAuditEntry.findUniqueOrThrow({
      where: { id: res.body.auditId },
    });
    expect(entry).toMatchObject({
      actorUserId: admin.userId,
      action: "violation.extend_grace",
      targetType: "violation",
      targetId: violation.id,
      organizationId: organization.id,
      reason: "Upgrading next week",
      before: expect.objectContaining({ action: "read_only", graceEndsAt: null }),
      after: expect.objectContaining({ action: "grace_period", graceEndsAt }),
    });

    const organizationRow = await testApp.ctx.db.organization.findUniqueOrThrow({
      where: { id: organization.id },
    });
    expect(organizationRow.planViolations).toEqual([
      expect.objectContaining({ type: "meetings", action: "grace_period", graceEndsAt }),
    ]);

    const detail = await request(testApp.app)
      .get(`/api/v1/admin/organizations/${organization.id}`)
      .set(admin.adminHeaders());
    expect(detail.body.violations[0].history.map((h: { event: string }) => h.event)).toEqual([
      "detected",
      "grace_extended",
      "action_changed",
    ]);
    expect(detail.body.violations[0].history[1]).toMatchObject({
      actorUserId: admin.userId,
      reason: "Upgrading next week",
    });

    const log = await request(testApp.app)
      .get("/api/v1/admin/audit-log")
      .query({ targetId: organization.id })
      .set(admin.adminHeaders());
    expect(log.status).toBe(200);
    expect(log.body.data).toEqual([
      expect.objectContaining({ id: res.body.auditId, action: "violation.extend_grace" }),
    ]);

    const shorter = await request(testApp.app)
      .post(`/api/v1/admin/violations/${violation.id}/extend-grace`)
      .set(admin.adminHeaders())
      .send({
        reason: "oops",
        expectedVersion: res.body.violation.version,
        graceEndsAt: new Date(clock.now().getTime() + DAY_MS).toISOString(),
      });
    expect(shorter.status).toBe(400);
    expect(shorter.body.error.code).toBe("GRACE_NOT_EXTENDED");
    const blank = await request(testApp.app)
      .post(`/api/v1/admin/violations/${violation.id}/extend-grace`)
      .set(admin.adminHeaders())
      .send({ reason: "  ", expectedVersion: res.body.violation.version, graceEndsAt });
    expect(blank.status).toBe(400);
    expect(await auditCount()).toBe(before + 1);
  });

  it("answers 409 VERSION_CONFLICT to the later of two concurrent edits of a violation", async () => {
    const admin = await platformAdmin();
    const { violation } = await organizationOverMeetingLimit();
    const before = await auditCount();
    const edits = await Promise.all(
      [1, 2, 3, 4].map((days) =>
        request(testApp.app)
          .post(`/api/v1/admin/violations/${violation.id}/extend-grace`)
          .set(admin.adminHeaders())
          .send({
            reason: `${days} days`,
            expectedVersion: violation.version,
            graceEndsAt: new Date(clock.now().getTime() + days * DAY_MS).toISOString(),
          }),
      ),
    );
    const statuses = edits.map((res) => res.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409]);
    for (const res of edits.filter((edit) => edit.status === 409)) {
      expect(res.body.error.code).toBe("VERSION_CONFLICT");
    }
    expect(await auditCount()).toBe(before + 1);
    const winner = edits.find((res) => res.status === 200)!;
    const row = await testApp.ctx.db.planViolation.findUniqueOrThrow({
      where: { id: violation.id },
    });
    expect(row.graceEndsAt?.toISOString()).toBe(winner.body.violation.graceEndsAt);

    // A waiver from a stale read is refused too.
    const stale = await request(testApp.app)
      .post(`/api/v1/admin/violations/${violation.id}/waive`)
      .set(admin.adminHeaders())
      .send({
        reason: "stale",
        expectedVersion: violation.version,
        until: new Date(clock.now().getTime() + DAY_MS).toISOString(),
      });
    expect(stale.status).toBe(409);
    expect(stale.body.error).toMatchObject({
      code: "VERSION_CONFLICT",
      details: { expectedVersion: violation.version, currentVersion: row.version },
    });
  });

  it("lift-suspension: writes allowed for N days without payment, then suspended again; concurrent lifts get 409", async () => {
    const admin = await platformAdmin();
    const owner = await authHeaderFor(testApp);
    const subscription = await createSubscription(testApp.ctx.db, {
      organizationId: owner.organizationId,
      status: "suspended",
    });
    const createMeetingAsOwner = () => createWeeklyMeeting(owner);
    expect((await createMeetingAsOwner()).status).toBe(402);

    const before = await auditCount();
    const lifts = await Promise.all(
      [2, 3].map((days) =>
        request(testApp.app)
          .post(`/api/v1/admin/organizations/${owner.organizationId}/lift-suspension`)
          .set(admin.adminHeaders())
          .send({ reason: "Card replaced, invoice retry pending", expectedVersion: 0, days }),
      ),
    );
    expect(lifts.map((res) => res.status).sort()).toEqual([200, 409]);
    expect(lifts.find((res) => res.status === 409)!.body.error.code).toBe("VERSION_CONFLICT");
    expect(await auditCount()).toBe(before + 1);
    const lifted = lifts.find((res) => res.status === 200)!;
    expect(lifted.body.subscription).toMatchObject({
      id: subscription.id,
      status: "suspended",
      version: 1,
    });

    expect((await createMeetingAsOwner()).status).toBe(201);
    clock.advance(4 * DAY_MS);
    const after = await createMeetingAsOwner();
    expect(after.status).toBe(402);
    expect(after.body.error.code).toBe("SUBSCRIPTION_SUSPENDED");
    clock.set(START);

    const notSuspended = await request(testApp.app)
      .post(`/api/v1/admin/organizations/${admin.organizationId}/lift-suspension`)
      .set(admin.adminHeaders())
      .send({ reason: "no", expectedVersion: 0, days: 1 });
    expect(notSuspended.status).toBe(409);
    expect(notSuspended.body.error.code).toBe("NOT_SUSPENDED");
    expect(await auditCount()).toBe(before + 1);
  });

  it("recheck-violations and resend a notice write one audit row each, a job's run two", async () => {
    const admin = await platformAdmin();
    const { organization } = await organizationOverMeetingLimit();

    let before = await auditCount();
    const recheck = await request(testApp.app)
      .post(`/api/v1/admin/organizations/${organization.id}/recheck-violations`)
      .set(admin.adminHeaders())
      .send({ reason: "Customer deleted meetings" });
    expect(recheck.status).toBe(200);
    expect(recheck.body.violations).toEqual([expect.objectContaining({ type: "meetings" })]);
    expect(await auditCount()).toBe(before + 1);

    const notice = await testApp.ctx.db.notification.findFirstOrThrow({
      where: { organizationId: organization.id, status: "sent" },
    });
    before = await auditCount();
    const resent = await request(testApp.app)
      .post(`/api/v1/admin/notices/${notice.id}/resend`)
      .set(admin.adminHeaders())
      .send({ reason: "Customer lost the e-mail" });
    expect(resent.status).toBe(200);
    expect(resent.body.notice).toMatchObject({ id: notice.id, status: "pending", attempts: 0 });
    expect(await auditCount()).toBe(before + 1);
    await testApp.ctx.notices.idle();
    const delivered = await testApp.ctx.db.notification.findUniqueOrThrow({
      where: { id: notice.id },
    });
    expect(delivered.status).toBe("sent");

    before = await auditCount();
    // A manual run's tick is its start: the wall clock keeps it apart from earlier runs' ticks.
    clock.set(Date.now());
    const run = await request(testApp.app)
      .post("/api/v1/admin/jobs/deliverNotifications/run")
      .set(admin.adminHeaders())
      .send({ reason: "Outbox looked stuck" });
    expect(run.status).toBe(200);
    expect(run.body.outcome).toMatchObject({ status: "succeeded", error: null });
    // Who asked (written with the run's claim, before it started), then the outcome.
    expect(await auditCount()).toBe(before + 2);
    const runs = await request(testApp.app)
      .get("/api/v1/admin/job-runs")
      .query({ jobName: "deliverNotifications", outcome: "succeeded", limit: 100 })
      .set(admin.adminHeaders());
    // Other suites' runs share the table, some with clocks moved days ahead: look for this one.
    expect(runs.body.data).toContainEqual(
      expect.objectContaining({ id: run.body.outcome.runId, jobName: "deliverNotifications" }),
    );

    const unknown = await request(testApp.app)
      .post("/api/v1/admin/jobs/noSuchJob/run")
      .set(admin.adminHeaders())
      .send({ reason: "x" });
    expect(unknown.status).toBe(404);
    expect(await auditCount()).toBe(before + 2);
    clock.set(START);
  });

  it("answers 409 to the later of two concurrent resends of a notice, and of two runs of a job", async () => {
    const admin = await platformAdmin();
    const { organization } = await organizationOverMeetingLimit();
    const notice = await testApp.ctx.db.notification.findFirstOrThrow({
      where: { organizationId: organization.id, status: "sent" },
    });
    const before = await auditCount();
    const resends = await Promise.all(
      [1, 2].map(() =>
        request(testApp.app)
          .post(`/api/v1/admin/notices/${notice.id}/resend`)
          .set(admin.adminHeaders())
          .send({ reason: "twice" }),
      ),
    );
    expect(resends.map((res) => res.status).sort()).toEqual([200, 409]);
    expect(resends.find((res) => res.status === 409)!.body.error.code).toBe("NOTICE_PENDING");
    expect(await auditCount()).toBe(before + 1);
    await testApp.ctx.notices.idle();

    clock.set(Date.now());
    const runs = await Promise.all(
      [1, 2].map(() =>
        request(testApp.app)
          .post("/api/v1/admin/jobs/recheckPlanViolations/run")
          .set(admin.adminHeaders())
          .send({ reason: "twice" }),
      ),
    );
    clock.set(START);
    expect(runs.map((res) => res.status).sort()).toEqual([200, 409]);
    expect(runs.find((res) => res.status === 409)!.body.error.code).toBe("JOB_ALREADY_RUNNING");
    // The resend's row, and the run's two (request and outcome); the refused run wrote none.
    expect(await auditCount()).toBe(before + 3);
  });

  it("keeps the audit log append-only in the database", async () => {
    const admin = await platformAdmin();
    const { organization } = await organizationOverMeetingLimit();
    const res = await request(testApp.app)
      .post(`/api/v1/admin/organizations/${organization.id}/recheck-violations`)
      .set(admin.adminHeaders())
      .send({ reason: "check" });
    const id = res.body.auditId as string;
    await expect(
      testApp.ctx.db
        .$executeRaw`UPDATE admin_audit_log SET reason = 'changed' WHERE id = ${id}::uuid`,
    ).rejects.toThrow(/append-only/);
    await expect(
      testApp.ctx.db.$executeRaw`DELETE FROM admin_audit_log WHERE id = ${id}::uuid`,
    ).rejects.toThrow(/append-only/);
    const entry = await testApp.ctx.db.adminAuditEntry.findUniqueOrThrow({ where: { id } });
    expect(entry.reason).toBe("check");
  });
});
