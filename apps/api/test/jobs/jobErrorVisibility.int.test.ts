import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { prepareTestDatabase } from "@zigznote/database/testing";
import request from "supertest";
import { runJob } from "../../src/jobs";
import { SCOPES } from "../../src/http/scopes";
import { apiKeyHeaderFor, authHeaderFor, signClerkToken } from "../support/auth";
import { testDatabaseUrl } from "../support/env";
import { createTestApp, ManualClock, type TestApp } from "../support/helpers";

/**
 * The failed run below must be its job's newest, and no later suite of this worker may find it
 * as that job's last run: a database of its own, as the scheduled jobs' suite has.
 */
const ownDatabaseUrl = (() => {
  const url = new URL(testDatabaseUrl);
  url.pathname = `${url.pathname}_job_errors`;
  return url.toString();
})();

// What a failing job's message can carry: SQL, a host, a customer's id, an address.
const INTERNALS = [
  'insert or update on table "meetings" violates foreign key constraint',
  "db-primary.internal:5432",
  "org_7c1e0b2a",
];
const FAILURE =
  `${INTERNALS[0]} (connect to ${INTERNALS[1]}) for ${INTERNALS[2]}, ` +
  "owner ada.admin@customer.example";
const RECORDED = FAILURE.replace("ada.admin@customer.example", "[email]");
// A scheduler's instance id, as createJobScheduler makes it: the host's name first.
const INSTANCE = "api-7f9c.prod.internal:4242:9f86d081";

describe("a failed job run's error and instance", () => {
  let db: PrismaClient;
  let app: TestApp;
  const clock = new ManualClock();
  const jobName = "recheckPlanViolations";
  let runId: string;

  beforeAll(async () => {
    await prepareTestDatabase(ownDatabaseUrl);
    db = createPrismaClient(ownDatabaseUrl, { maxConnections: 5 });
    app = createTestApp({ db, clock, env: { DATABASE_URL: ownDatabaseUrl } });
    clock.set(Date.now());
    const job = app.ctx.jobs.find((candidate) => candidate.name === jobName)!;
    const outcome = await runJob(
      app.ctx,
      { ...job, run: () => Promise.reject(new Error(FAILURE)) },
      { scheduledFor: clock.now(), instanceId: INSTANCE },
    );
    if (outcome.status !== "failed") throw new Error(`the run was ${outcome.status}`);
    runId = outcome.runId;
  }, 120_000);
  afterAll(async () => {
    await app.close();
    await db.$disconnect();
  });

  it("is not in the unauthenticated GET /health/jobs, which still says the run failed", async () => {
    const res = await request(app.app).get("/health/jobs");
    expect(res.status).toBe(200);
    const job = (res.body.jobs as { name: string; lastRun: Record<string, unknown> | null }[]).find(
      (candidate) => candidate.name === jobName,
    );
    expect(job?.lastRun).toMatchObject({ outcome: "failed", rowsAffected: 0, error: null });
    expect(job?.lastRun?.finishedAt).toEqual(expect.any(String));
    // The raw body, not the parsed field: no other key may carry the text either.
    for (const text of [RECORDED, "[email]", ...INTERNALS]) expect(res.text).not.toContain(text);
  });

  it("names no instance (a host) in the unauthenticated GET /health/jobs", async () => {
    const res = await request(app.app).get("/health/jobs");
    const job = (res.body.jobs as { name: string; lastRun: Record<string, unknown> | null }[]).find(
      (candidate) => candidate.name === jobName,
    );
    expect(job?.lastRun).toMatchObject({ outcome: "failed", instanceId: null });
    expect(res.text).not.toContain("api-7f9c");
  });

  it("are answered by the admin API to a platform admin, and to no one else", async () => {
    const caller = await authHeaderFor(app);
    const platformAdmin = {
      Authorization: `Bearer ${signClerkToken({
        userId: caller.userClerkId,
        orgId: caller.orgClerkId,
        claims: { metadata: { platformAdmin: true } },
      })}`,
    };
    const query = { jobName, outcome: "failed" };

    const runs = await request(app.app)
      .get("/api/v1/admin/job-runs")
      .query(query)
      .set(platformAdmin);
    expect(runs.status).toBe(200);
    // Newest first; earlier `jest` runs left their own failed runs in this database.
    expect(runs.body.data[0]).toMatchObject({
      id: runId,
      jobName,
      error: RECORDED,
      instanceId: INSTANCE,
    });
    const overview = await request(app.app).get("/api/v1/admin/overview").set(platformAdmin);
    expect(overview.status).toBe(200);
    expect(overview.body.jobs).toContainEqual(
      expect.objectContaining({ jobName, lastFailureError: RECORDED }),
    );

    const orgAdmin = await authHeaderFor(app, { role: "admin" });
    const key = await apiKeyHeaderFor(app, { scopes: SCOPES });
    for (const path of ["/api/v1/admin/job-runs", "/api/v1/admin/overview"]) {
      const signedOut = await request(app.app).get(path).query(query);
      const asOrgAdmin = await request(app.app).get(path).query(query).set(orgAdmin.headers);
      const asKey = await request(app.app).get(path).query(query).set(key.headers);
      expect([signedOut.status, asOrgAdmin.status, asKey.status]).toEqual([401, 403, 403]);
      for (const res of [signedOut, asOrgAdmin, asKey]) {
        for (const text of [RECORDED, INSTANCE, ...INTERNALS]) expect(res.text).not.toContain(text);
      }
    }
  });
});
