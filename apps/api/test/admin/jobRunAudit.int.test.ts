import { uniqueSuffix } from "@zigznote/database/testing";
import request, { type Response } from "supertest";
import type { JobDefinition, JobResult } from "../../src/jobs";
import { authHeaderFor, platformAdminHeadersFor } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

/**
 * POST /api/v1/admin/jobs/:jobName/run records who asked before the job starts, committed with
 * the run's claim (`job.run_requested`), and the outcome in a second entry when it ends
 * (`job.run`; the log is append-only). A run that fails, an instance that dies during a long
 * run, or a run whose end cannot be recorded never leaves a run without the entry of who asked.
 */

/** A promise settled from outside. */
function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

const suffix = uniqueSuffix();
const JOBS = {
  blocks: `auditBlocks_${suffix}`,
  fails: `auditFails_${suffix}`,
  // Deletes its own run's row, so the runner's record of its end fails (as when the database
  // goes away mid-run).
  unrecordable: `auditUnrecordable_${suffix}`,
};
let started = deferred();
let finish = deferred<JobResult>();

function testJob(name: string, run: () => Promise<JobResult>): JobDefinition {
  return { name, schedule: "0 0 1 1 *", description: "A test's job", leaseMs: 60_000, run };
}

let testApp: TestApp;
beforeAll(() => {
  testApp = createTestApp({
    configureJobs: (declared) => [
      ...declared,
      testJob(JOBS.blocks, () => {
        started.resolve();
        return finish.promise;
      }),
      testJob(JOBS.fails, () => Promise.reject(new Error("the provider refused"))),
      testJob(JOBS.unrecordable, async () => {
        await testApp.ctx.db.jobRun.deleteMany({ where: { jobName: JOBS.unrecordable } });
        throw new Error("the provider refused");
      }),
    ],
  });
});
// A failed test must not leave the blocking job (and its request) waiting.
afterEach(() => finish.resolve({ rowsAffected: 0 }));
afterAll(async () => {
  // This suite's runs (no other suite may count them).
  await testApp.ctx.db.jobRun.deleteMany({ where: { jobName: { in: Object.values(JOBS) } } });
  await testApp.close();
});

/** A platform admin (by the session claim) in an organization of its own. */
async function platformAdmin() {
  const caller = await authHeaderFor(testApp);
  return { ...caller, adminHeaders: platformAdminHeadersFor(caller) };
}
type Admin = Awaited<ReturnType<typeof platformAdmin>>;

function runNow(admin: Admin, jobName: string, body: unknown = { reason: "Outbox looked stuck" }) {
  return request(testApp.app)
    .post(`/api/v1/admin/jobs/${jobName}/run`)
    .set(admin.adminHeaders)
    .send(body as object);
}

interface AuditEntry {
  id: string;
  action: string;
  actorUserId: string;
  reason: string;
  targetType: string;
  targetId: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

/** The job's audit entries, as the console reads them (newest first). */
async function auditOf(admin: Admin, jobName: string): Promise<AuditEntry[]> {
  const res = await request(testApp.app)
    .get("/api/v1/admin/audit-log")
    .query({ targetType: "job", targetId: jobName })
    .set(admin.adminHeaders);
  expect(res.status).toBe(200);
  return res.body.data as AuditEntry[];
}

const byAction = (entries: AuditEntry[], action: string) =>
  entries.filter((entry) => entry.action === action);

describe("POST /api/v1/admin/jobs/:jobName/run", () => {
  it("records who asked before the job starts: the entry is there while the run is under way", async () => {
    const admin = await platformAdmin();
    started = deferred();
    finish = deferred<JobResult>();
    const answer: Promise<Response> = runNow(admin, JOBS.blocks).then((res) => res);
    await started.promise;

    const run = await testApp.ctx.db.jobRun.findFirstOrThrow({
      where: { jobName: JOBS.blocks, outcome: "running" },
    });
    // Had the instance died now, this is what the log would keep.
    const during = await auditOf(admin, JOBS.blocks);
    expect(during).toEqual([
      expect.objectContaining({
        action: "job.run_requested",
        actorUserId: admin.userId,
        reason: "Outbox looked stuck",
        targetType: "job",
        targetId: JOBS.blocks,
        before: null,
        after: { status: "running", runId: run.id, startedAt: run.startedAt.toISOString() },
      }),
    ]);

    // A second run while this one is under way is refused, and writes nothing.
    const refused = await runNow(admin, JOBS.blocks);
    expect([refused.status, refused.body.error.code]).toEqual([409, "JOB_ALREADY_RUNNING"]);
    expect(await auditOf(admin, JOBS.blocks)).toHaveLength(1);

    finish.resolve({ rowsAffected: 3 });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body.outcome).toEqual({
      status: "succeeded",
      runId: run.id,
      rowsAffected: 3,
      error: null,
    });
    const entries = await auditOf(admin, JOBS.blocks);
    // Newest first: the outcome above the request, even within the millisecond the run began.
    expect(entries.map((entry) => entry.action)).toEqual(["job.run", "job.run_requested"]);
    const [requested] = byAction(entries, "job.run_requested");
    const [outcome] = byAction(entries, "job.run");
    expect(requested).toEqual(during[0]);
    expect(outcome).toMatchObject({
      id: res.body.auditId,
      actorUserId: admin.userId,
      reason: "Outbox looked stuck",
      targetId: JOBS.blocks,
      before: { requestAuditId: requested!.id, status: "running", runId: run.id },
      after: { status: "succeeded", runId: run.id, rowsAffected: 3, error: null },
    });
  });

  it("records who asked for a run that fails, then how it failed", async () => {
    const admin = await platformAdmin();
    const res = await runNow(admin, JOBS.fails, { reason: "Retry after the provider's outage" });
    expect(res.status).toBe(200);
    expect(res.body.outcome).toMatchObject({ status: "failed", error: "the provider refused" });
    const entries = await auditOf(admin, JOBS.fails);
    expect(byAction(entries, "job.run_requested")).toEqual([
      expect.objectContaining({
        actorUserId: admin.userId,
        reason: "Retry after the provider's outage",
        after: expect.objectContaining({ status: "running", runId: res.body.outcome.runId }),
      }),
    ]);
    expect(byAction(entries, "job.run")).toEqual([
      expect.objectContaining({
        id: res.body.auditId,
        actorUserId: admin.userId,
        after: expect.objectContaining({ status: "failed", error: "the provider refused" }),
      }),
    ]);
  });

  it("keeps who asked for a run whose end could not be recorded", async () => {
    const admin = await platformAdmin();
    const res = await runNow(admin, JOBS.unrecordable, { reason: "Try once more" });
    // The runner could not record the run's end (its row is gone): the answer is a 500, as
    // after a crash.
    expect([res.status, res.body.error.code]).toEqual([500, "INTERNAL_ERROR"]);
    expect(await auditOf(admin, JOBS.unrecordable)).toEqual([
      expect.objectContaining({
        action: "job.run_requested",
        actorUserId: admin.userId,
        reason: "Try once more",
        after: {
          status: "running",
          runId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          startedAt: expect.any(String),
        },
      }),
    ]);
  });

  it("refuses a run without a reason, or of no job, with 4xx and writes nothing", async () => {
    const admin = await platformAdmin();
    const before = await testApp.ctx.db.adminAuditEntry.count({
      where: { actorUserId: admin.userId },
    });
    const noReason = await runNow(admin, JOBS.fails, { reason: "  " });
    expect([noReason.status, noReason.body.error.code]).toEqual([400, "VALIDATION_ERROR"]);
    const unknown = await runNow(admin, `noSuchJob_${suffix}`);
    expect([unknown.status, unknown.body.error.code]).toEqual([404, "JOB_NOT_FOUND"]);
    expect(
      await testApp.ctx.db.adminAuditEntry.count({ where: { actorUserId: admin.userId } }),
    ).toBe(before);
    expect(await testApp.ctx.db.jobRun.count({ where: { jobName: `noSuchJob_${suffix}` } })).toBe(
      0,
    );
  });
});
