import { runJob, type JobDefinition } from "../../src/jobs";
import { createJobScheduler, nextRunOf, tickOf } from "../../src/jobs/scheduler";
import { createTestApp, type TestApp } from "../support/helpers";

let counter = 0;
/** A job with a unique name (tests share the database) that records each execution. */
function makeJob(
  overrides: Partial<JobDefinition> & { executions?: string[] } = {},
): JobDefinition & { executions: string[] } {
  counter += 1;
  const executions = overrides.executions ?? [];
  return {
    name: `test-job-${Date.now()}-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    schedule: "*/5 * * * *",
    description: "test",
    leaseMs: 60_000,
    run: ({ scheduledFor }) => {
      executions.push(scheduledFor.toISOString());
      return Promise.resolve({ rowsAffected: 3 });
    },
    ...overrides,
    executions,
  };
}

describe("job runner", () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(() => {
    a = createTestApp();
    b = createTestApp(); // a second "instance": its own pool, same database
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it("runs a tick once when two instances fire it concurrently, and records the run", async () => {
    const job = makeJob();
    const tick = new Date("2026-11-27T10:05:00Z");
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runJob(i % 2 ? a.ctx : b.ctx, job, { scheduledFor: tick, instanceId: `i${i % 2}` }),
      ),
    );
    expect(outcomes.filter((o) => o.status === "succeeded")).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === "skipped")).toHaveLength(9);
    expect(job.executions).toEqual([tick.toISOString()]);
    const runs = await a.ctx.db.jobRun.findMany({ where: { jobName: job.name } });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ outcome: "succeeded", rowsAffected: 3, scheduledFor: tick });
    expect(runs[0]!.finishedAt).not.toBeNull();
  });

  it("never overlaps: a tick that fires while the previous run works is skipped", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const job = makeJob({
      run: async () => {
        await gate;
        return { rowsAffected: 0 };
      },
    });
    const first = runJob(a.ctx, job, {
      scheduledFor: new Date("2026-11-27T10:00:00Z"),
      instanceId: "a",
    });
    // Wait until the first run has claimed its tick.
    while ((await a.ctx.db.jobRun.count({ where: { jobName: job.name } })) === 0)
      await new Promise((r) => setTimeout(r, 10));
    const second = await runJob(b.ctx, job, {
      scheduledFor: new Date("2026-11-27T10:05:00Z"),
      instanceId: "b",
    });
    expect(second).toEqual({ status: "skipped", reason: "previous_run_in_progress" });
    release();
    expect((await first).status).toBe("succeeded");
    const third = await runJob(b.ctx, job, {
      scheduledFor: new Date("2026-11-27T10:10:00Z"),
      instanceId: "b",
    });
    expect(third.status).toBe("succeeded");
  });

  it("closes a run abandoned past its lease and runs the new tick", async () => {
    const job = makeJob({ leaseMs: 1_000 });
    await a.ctx.db.jobRun.create({
      data: {
        jobName: job.name,
        scheduledFor: new Date("2026-11-27T09:00:00Z"),
        outcome: "running",
        startedAt: new Date(Date.now() - 5_000),
        instanceId: "dead",
      },
    });
    const outcome = await runJob(a.ctx, job, {
      scheduledFor: new Date("2026-11-27T09:05:00Z"),
      instanceId: "a",
    });
    expect(outcome.status).toBe("succeeded");
    const abandoned = await a.ctx.db.jobRun.findFirstOrThrow({
      where: { jobName: job.name, instanceId: "dead" },
    });
    expect(abandoned.outcome).toBe("failed");
    expect(abandoned.error).toMatch(/abandoned/);
  });

  it("a live run longer than its lease keeps it (heartbeat): the next tick skips, nothing overlaps", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let active = 0;
    let maxActive = 0;
    const job = makeJob({
      leaseMs: 900,
      run: async ({ scheduledFor }) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        // Only the first run waits (a second one, if it ever started, would end at once).
        if (scheduledFor.getTime() === firstTick.getTime()) await gate;
        active -= 1;
        return { rowsAffected: 1 };
      },
    });
    const firstTick = new Date("2026-11-27T11:00:00Z");
    const first = runJob(a.ctx, job, {
      scheduledFor: firstTick,
      instanceId: "a",
    });
    while (active === 0) await new Promise((r) => setTimeout(r, 10));
    // Well past the lease, the first run is still working (a long purge, a slow provider).
    await new Promise((r) => setTimeout(r, 2_000));
    const second = await runJob(b.ctx, job, {
      scheduledFor: new Date("2026-11-27T11:05:00Z"),
      instanceId: "b",
    });
    release();
    expect((await first).status).toBe("succeeded");
    expect(second).toEqual({ status: "skipped", reason: "previous_run_in_progress" });
    expect(maxActive).toBe(1);
    const runs = await a.ctx.db.jobRun.findMany({ where: { jobName: job.name } });
    expect(runs).toEqual([expect.objectContaining({ outcome: "succeeded", error: null })]);
  });

  it("records a failure with its error and counts it in /metrics", async () => {
    const job = makeJob({
      run: () => Promise.reject(new Error("recall exploded")),
    });
    const outcome = await runJob(a.ctx, job, {
      scheduledFor: new Date("2026-11-27T11:00:00Z"),
      instanceId: "a",
    });
    expect(outcome).toMatchObject({ status: "failed", error: "recall exploded" });
    const run = await a.ctx.db.jobRun.findFirstOrThrow({ where: { jobName: job.name } });
    expect(run).toMatchObject({ outcome: "failed", error: "recall exploded" });
    const metrics = await a.ctx.metrics.registry.metrics();
    expect(metrics).toContain(`zigznote_job_runs_total{job_name="${job.name}",outcome="failed"} 1`);
  });

  it("records a failure's message without the e-mail addresses it quotes", async () => {
    const job = makeJob({
      run: () => Promise.reject(new Error("SMTP refused <ada.admin@customer.example>: 550")),
    });
    const outcome = await runJob(a.ctx, job, {
      scheduledFor: new Date("2026-11-27T11:05:00Z"),
      instanceId: "a",
    });
    const run = await a.ctx.db.jobRun.findFirstOrThrow({ where: { jobName: job.name } });
    // Shown to platform admins in the console and the admin API (not by GET /health/jobs), and
    // answered to the console's "run now" as recorded.
    expect(run.error).toBe("SMTP refused <[email]>: 550");
    expect(outcome).toMatchObject({ status: "failed", error: "SMTP refused <[email]>: 550" });
  });

  it("records a failure whose message holds U+0000, which PostgreSQL's text cannot", async () => {
    const job = makeJob({ run: () => Promise.reject(new Error("binary\u0000answer")) });
    const outcome = await runJob(a.ctx, job, {
      scheduledFor: new Date("2026-11-27T11:06:00Z"),
      instanceId: "a",
    });
    expect(outcome).toMatchObject({ status: "failed", error: "binary\uFFFDanswer" });
    const run = await a.ctx.db.jobRun.findFirstOrThrow({ where: { jobName: job.name } });
    expect(run).toMatchObject({ outcome: "failed", error: "binary\uFFFDanswer" });
  });

  it("fires on schedule in two schedulers and still runs each tick once", async () => {
    const job = makeJob({ schedule: "* * * * * *" }); // every second
    const one = createJobScheduler(a.ctx, [job], {
      timezone: "UTC",
      start: true,
      instanceId: "one",
    });
    const two = createJobScheduler(b.ctx, [job], {
      timezone: "UTC",
      start: true,
      instanceId: "two",
    });
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    await one.stop();
    await two.stop();
    const runs = await a.ctx.db.jobRun.findMany({ where: { jobName: job.name } });
    const ticks = new Set(runs.map((r) => r.scheduledFor.toISOString()));
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(ticks.size).toBe(runs.length);
    expect(new Set(job.executions).size).toBe(job.executions.length);
    expect(job.executions.length).toBe(runs.length);
    expect(runs.every((r) => r.outcome === "succeeded")).toBe(true);
  });

  it("knows the next run without firing (jobs disabled)", async () => {
    const job = makeJob({ schedule: "0 3 * * *" });
    const scheduler = createJobScheduler(a.ctx, [job], { timezone: "UTC", start: false });
    const next = scheduler.nextRun(job.name)!;
    expect(next.getUTCHours()).toBe(3);
    expect(next.getUTCMinutes()).toBe(0);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(tickOf(new Date("2026-11-27T10:00:00.734Z")).toISOString()).toBe(
      "2026-11-27T10:00:00.000Z",
    );
    await scheduler.stop();
    expect(job.executions).toHaveLength(0);
  });
});

describe("nextRunOf", () => {
  it("reads the schedule in the configured timezone", () => {
    const after = new Date("2026-11-27T12:00:00Z");
    expect(nextRunOf("0 3 * * *", "UTC", after).toISOString()).toBe("2026-11-28T03:00:00.000Z");
    // 03:00 in New York in November (UTC-5) is 08:00 UTC.
    expect(nextRunOf("0 3 * * *", "America/New_York", after).toISOString()).toBe(
      "2026-11-28T08:00:00.000Z",
    );
    expect(nextRunOf("*/5 * * * *", "UTC", new Date("2026-11-27T12:01:30Z")).toISOString()).toBe(
      "2026-11-27T12:05:00.000Z",
    );
  });
});
