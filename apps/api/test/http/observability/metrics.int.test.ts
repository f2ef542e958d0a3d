import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createPrismaClient } from "@zigznote/database";
import {
  createBot,
  createMeeting,
  createOrganization,
  createOrganizationWithAdmin,
  createSubscription,
} from "@zigznote/database/testing";
import type { LRParser } from "@lezer/lr";
import { WEBHOOK_PROVIDERS } from "@zigznote/shared";
import request from "supertest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { runJob, type JobDefinition } from "../../../src/jobs";
import { createMetrics } from "../../../src/lib/metrics";
import { registerStateMetrics } from "../../../src/system/stateMetrics";
import { formatApiKey } from "../../../src/identity/apiKeyService";
import { EMAIL_TEMPLATES, enqueueAdminNotices } from "../../../src/notifications";
import { apiKeyHeaderFor } from "../../support/auth";
import { testRedisUrl } from "../../support/env";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";
import { startTcpProxy } from "../../support/tcpProxy";

/**
 * What the on-call engineer's tools read: the alert rules (deploy/prometheus/alerts.yml) and the
 * dashboard (deploy/grafana/zigznote.json) name only metrics this API's /metrics exposes, and
 * the metrics added for them follow the database and the HTTP answers they describe.
 */

// Prometheus's own PromQL grammar (its web UI's parser); an ES module with a CommonJS build.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parser } = require("@prometheus-io/lezer-promql") as { parser: LRParser };

const repoRoot = path.resolve(__dirname, "../../../../..");
const alertsFile = path.join(repoRoot, "deploy/prometheus/alerts.yml");
const dashboardFile = path.join(repoRoot, "deploy/grafana/zigznote.json");
const runbookFile = path.join(repoRoot, "project_docs/RUNBOOK.md");

const opened: TestApp[] = [];
function open(options: Parameters<typeof createTestApp>[0] = {}): TestApp {
  const testApp = createTestApp(options);
  opened.push(testApp);
  return testApp;
}
afterAll(() => Promise.all(opened.map((testApp) => testApp.close())));

async function scrape(testApp: TestApp): Promise<string> {
  const response = await request(testApp.app).get("/metrics");
  expect(response.status).toBe(200);
  return response.text;
}

/** The series names a /metrics text can be queried by (a histogram's _bucket, _sum, _count). */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    if (type === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(`${name}${suffix}`);
    } else if (type === "summary") {
      for (const suffix of ["", "_sum", "_count"]) names.add(`${name}${suffix}`);
    } else {
      names.add(name);
    }
  }
  return names;
}

/** The value of one series (`name{labels}` exactly as prom-client writes it), or undefined. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A dashboard query as Prometheus receives it: Grafana's macros and variables substituted. */
function asPromql(expr: string): string {
  return expr
    .replace(/\$__rate_interval|\$__interval|\$__range/g, "5m")
    .replace(/\$\{?instance\}?/g, ".*");
}

/** Metric names a PromQL expression selects; throws on a syntax error. */
function metricsIn(expr: string): string[] {
  const promql = asPromql(expr);
  const tree = parser.parse(promql);
  const names: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) {
        throw new Error(`PromQL syntax error at ${node.from} in: ${promql}`);
      }
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") {
        names.push(promql.slice(node.from, node.to));
      }
    },
  });
  return names;
}

interface AlertRule {
  alert: string;
  expr: string;
  annotations?: Record<string, string>;
}

function alertRules(): AlertRule[] {
  const document = parseYaml(readFileSync(alertsFile, "utf8")) as {
    groups: { rules: AlertRule[] }[];
  };
  return document.groups.flatMap((group) => group.rules);
}

interface Panel {
  title?: string;
  panels?: Panel[];
  targets?: { refId?: string; expr?: string }[] | null;
}

function dashboardQueries(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(dashboardFile, "utf8")) as {
    panels: Panel[];
    templating: { list: { name: string; definition?: string }[] };
  };
  const queries: { where: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr) {
          queries.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
        }
      }
      walk(panel.panels ?? []);
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    // label_values(metric, label): Grafana's, not PromQL; its metric must exist all the same.
    const metric = /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(variable.definition ?? "");
    if (metric) queries.push({ where: `variable $${variable.name}`, expr: metric[1]! });
  }
  return queries;
}

/** GitHub's anchor of a Markdown heading. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");
}

describe("the alert rules and the dashboard", () => {
  let exposed: Set<string>;
  beforeAll(async () => {
    const testApp = open();
    // A request of every kind the rules count: answers, 5xx/429 aside (their series are the
    // same metrics with other labels).
    await request(testApp.app).get("/health");
    exposed = exposedNames(await scrape(testApp));
  });

  it("name only metrics that /metrics exposes", () => {
    const rules = alertRules();
    expect(rules.length).toBeGreaterThanOrEqual(9);
    const queries = [
      ...rules.map((rule) => ({ where: `alert ${rule.alert}`, expr: rule.expr })),
      ...dashboardQueries(),
    ];
    expect(queries.length).toBeGreaterThan(25);
    const unknown = queries.flatMap(({ where, expr }) =>
      metricsIn(expr)
        .filter((name) => !exposed.has(name))
        .map((name) => `${where}: ${name}`),
    );
    expect(unknown).toEqual([]);
    // Every query selects something (a metric, not only constants).
    const empty = queries.filter(({ expr }) => metricsIn(expr).length === 0);
    expect(empty).toEqual([]);
  });

  it("give every alert a summary, a description and a runbook section that exists", () => {
    const runbook = readFileSync(runbookFile, "utf8");
    const anchors = new Set(
      [...runbook.matchAll(/^#{2,3} (.+)$/gm)].map((match) => anchorOf(match[1]!)),
    );
    for (const rule of alertRules()) {
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      const link = rule.annotations?.runbook ?? "";
      expect(link).toBe(`project_docs/RUNBOOK.md#${rule.alert.toLowerCase()}`);
      expect(anchors).toContain(link.split("#")[1]);
    }
  });

  it("cover what the issue asks to be alerted on", () => {
    const names = alertRules().map((rule) => rule.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        "ZigznoteJobFailing",
        "ZigznoteJobNotRunning",
        "ZigznoteHighErrorRate",
        "ZigznoteDatabaseUnavailable",
        "ZigznoteApiDown",
        "ZigznoteNoticesFailing",
        "ZigznoteNoticesPilingUp",
        "ZigznoteWebhookDeliveriesFailing",
        "ZigznoteStuckBotsGrowing",
        "ZigznoteRateLimitingSpike",
        "ZigznoteApiKeyLockoutsSpike",
      ]),
    );
  });
});

/**
 * The series of a /metrics text as promtool's `input_series`: each sample as scraped by
 * Prometheus (its instance and job labels added), constant over `minutes`.
 */
function inputSeriesOf(text: string, minutes: number): { series: string; values: string }[] {
  const added = 'instance="api-1:3001",job="zigznote-api"';
  const series: { series: string; values: string }[] = [];
  for (const line of text.split("\n")) {
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    const [, name, labels, value] = sample as unknown as [
      string,
      string,
      string | undefined,
      string,
    ];
    series.push({
      series: `${name}{${labels ? `${added},${labels}` : added}}`,
      values: `${value}x${minutes}`,
    });
  }
  return series;
}

interface PromqlCase {
  where: string;
  /** PromQL (no Grafana macro left). */
  expr: string;
  /** What it must select at the end of the input: promtool's `exp_samples`. */
  samples: { labels: string; value: number }[];
}

/**
 * Evaluates each case with Prometheus's own engine (`promtool test rules`, which .ci/run
 * installs) over `input`, 10 minutes of it, at its end; returns the cases that selected
 * something else than their samples.
 */
async function failedPromqlCases(
  input: { series: string; values: string }[],
  cases: PromqlCase[],
): Promise<string[]> {
  const directory = mkdtempSync(path.join(tmpdir(), "zigznote-promql-"));
  try {
    const file = path.join(directory, "dashboard.test.yml");
    writeFileSync(
      file,
      stringifyYaml({
        rule_files: [],
        evaluation_interval: "1m",
        tests: [
          {
            interval: "1m",
            input_series: input,
            promql_expr_test: cases.map(({ expr, samples }) => ({
              expr,
              eval_time: "10m",
              exp_samples: samples,
            })),
          },
        ],
      }),
    );
    const output = await promisify(execFile)("promtool", ["test", "rules", file]).then(
      ({ stdout }) => stdout,
      (error: NodeJS.ErrnoException & { stdout?: string; stderr?: string }) => {
        if (error.code === "ENOENT") {
          throw new Error("promtool is needed (Debian: apt-get install prometheus; .ci/run does)");
        }
        return `${error.stdout ?? ""}${error.stderr ?? ""}`;
      },
    );
    if (!/SUCCESS|FAILED/.test(output)) throw new Error(`promtool said:\n${output}`);
    // promtool names each failed expression as Go's %q writes it (JSON's, for these).
    return cases
      .filter(({ expr }) => output.includes(`expr: ${JSON.stringify(expr)}`))
      .map(({ where }) => where);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** The query of a dashboard panel's target, as Prometheus receives it. */
function panelQuery(where: string): string {
  const query = dashboardQueries().find((candidate) => candidate.where === where);
  if (!query) throw new Error(`no ${where} in the dashboard`);
  return asPromql(query.expr);
}

describe("the dashboard on an instance before its first 5xx, 429, lockout or job run", () => {
  /**
   * Panels where "No data" is the truth on such an instance, not a count that has not started:
   * a quantile of no observation (0 s would be a lie), and the database's state where there is
   * nothing to show (no job ran, no subscription exists in a new database).
   */
  const MAY_BE_EMPTY = [
    'panel "Job duration p95" A',
    'panel "Jobs: time since last success, last outcome" A',
    'panel "Jobs: time since last success, last outcome" C',
    'panel "Billing standing: subscriptions by status" A',
  ];

  it("shows a value (0 where nothing was counted), not No data, in every other panel", async () => {
    const testApp = open({ redis: true });
    await request(testApp.app).get("/health");
    const text = await scrape(testApp);
    // The instance has answered no 5xx and no 429, started no lockout and ran no job.
    expect(text).not.toMatch(/^http_request_duration_seconds_count\{[^}]*status_code="(5|429)/m);
    expect(text).not.toMatch(/^zigznote_job_runs_total/m);
    const queries = dashboardQueries().filter(
      (query) => query.where.startsWith("panel ") && !MAY_BE_EMPTY.includes(query.where),
    );
    expect(queries.length).toBeGreaterThan(20);
    const cases = queries.map(({ where, expr }) => ({
      where,
      // 1 when the query selects anything, nothing when it selects nothing.
      expr: `clamp_max(count(${asPromql(expr)}), 1)`,
      samples: [{ labels: "{}", value: 1 }],
    }));
    expect(await failedPromqlCases(inputSeriesOf(text, 10), cases)).toEqual([]);
  });

  it("keeps the breakdowns by route: the 0 line goes once a route has counted one", async () => {
    const series = (name: string, labels: string, values: string) => ({
      series: `${name}{instance="api-1:3001",job="zigznote-api",${labels}}`,
      values,
    });
    const input = [
      series(
        "http_request_duration_seconds_count",
        'method="GET",route="/health",status_code="200"',
        "0+60x10",
      ),
      series(
        "http_request_duration_seconds_count",
        'method="GET",route="/api/v1/meetings",status_code="503"',
        "0+6x10",
      ),
      series(
        "zigznote_http_rate_limited_total",
        'route="/api/v1/me",error_code="RATE_LIMITED"',
        "0+30x10",
      ),
      series(
        "zigznote_http_rate_limited_total",
        'route="/api/v1/meetings",error_code="API_KEY_LOCKED"',
        "0x10",
      ),
    ];
    const cases: PromqlCase[] = [
      {
        where: "5xx",
        expr: panelQuery('panel "5xx answers by route" A'),
        samples: [{ labels: '{route="/api/v1/meetings", status_code="503"}', value: 0.1 }],
      },
      {
        where: "429",
        expr: panelQuery('panel "429 answers by route and error code" A'),
        samples: [
          { labels: '{route="/api/v1/me", error_code="RATE_LIMITED"}', value: 0.5 },
          { labels: '{route="/api/v1/meetings", error_code="API_KEY_LOCKED"}', value: 0 },
        ],
      },
      {
        where: "5xx ratio",
        expr: panelQuery('panel "Error ratio (5xx and 4xx of all requests)" A'),
        samples: [{ labels: "{}", value: 0.1 / 1.1 }],
      },
      {
        where: "4xx ratio",
        expr: panelQuery('panel "Error ratio (5xx and 4xx of all requests)" B'),
        samples: [{ labels: "{}", value: 0 }],
      },
    ];
    expect(await failedPromqlCases(input, cases)).toEqual([]);
  });
});

describe("GET /metrics: the state gauges", () => {
  it("follow the database: job runs, the outbox, stuck bots and subscriptions", async () => {
    // The app's clock runs ten minutes ahead and stands still: both scrapes count stuck bots
    // against the same cutoff, and a notice queued now is ten minutes old to the app.
    const clock = new ManualClock(new Date(Date.now() + 10 * 60_000));
    const testApp = open({ clock, env: { STUCK_BOT_AFTER_MINUTES: "60" } });
    const db = testApp.ctx.db;
    const before = await scrape(testApp);
    expect(valueOf(before, "zigznote_database_up")).toBe(1);
    expect(valueOf(before, 'zigznote_job_interval_seconds{job_name="cleanupOrphanedBots"}')).toBe(
      300,
    );
    expect(valueOf(before, 'zigznote_job_interval_seconds{job_name="cleanupOldWebhooks"}')).toBe(
      86_400,
    );
    const stuckBefore = valueOf(before, "zigznote_bots_stuck") ?? 0;
    const pendingBefore = valueOf(before, "zigznote_notices_pending") ?? 0;
    const pastDueBefore = valueOf(before, 'zigznote_subscriptions{status="past_due"}') ?? 0;

    // A job that succeeds now, and one whose latest finished run failed.
    const job = testApp.ctx.jobs.find((candidate) => candidate.name === "cleanupOldWebhooks")!;
    expect(
      (await runJob(testApp.ctx, job, { scheduledFor: clock.now(), instanceId: "t" })).status,
    ).toBe("succeeded");
    // The newest run of the job, after any other suite's (some move their clocks days ahead).
    const newest = await db.jobRun.aggregate({
      where: { jobName: "recheckPlanViolations" },
      _max: { startedAt: true },
    });
    const failedAt = Math.max(clock.now().getTime(), newest._max.startedAt?.getTime() ?? 0) + 1_000;
    await db.jobRun.create({
      data: {
        jobName: "recheckPlanViolations",
        scheduledFor: new Date(failedAt),
        startedAt: new Date(failedAt),
        finishedAt: new Date(failedAt + 1_000),
        outcome: "failed",
        error: "test",
      },
    });
    // Two bots without a status change for more than our 60 minutes, one fresh, and one that has
    // been recording for three hours: a long meeting, which the stuck-bot job leaves alone.
    const organization = await createOrganization(db);
    for (const [status, minutesAgo] of [
      ["in_call_not_recording", 120],
      ["in_call_not_recording", 90],
      ["in_call_not_recording", 5],
      ["in_call_recording", 180],
    ] as const) {
      const meeting = await createMeeting(db, { organizationId: organization.id });
      await createBot(db, meeting, {
        status,
        lastStatusAt: new Date(clock.now().getTime() - minutesAgo * 60_000),
      });
    }
    // A pending notice, ten minutes old by the app's clock.
    const { organization: noticed } = await createOrganizationWithAdmin(db);
    await enqueueAdminNotices({ db }, [
      {
        organizationId: noticed.id,
        type: "plan.violation_resolved",
        payload: { planSlug: "free", type: "meetings" },
        dedupeKey: `metrics:${noticed.id}`,
      },
    ]);
    await createSubscription(db, { organizationId: organization.id, status: "past_due" });

    const after = await scrape(testApp);
    const lastSuccess = valueOf(
      after,
      'zigznote_job_last_success_timestamp_seconds{job_name="cleanupOldWebhooks"}',
    )!;
    expect(Math.abs(lastSuccess - clock.now().getTime() / 1000)).toBeLessThan(15 * 60);
    expect(valueOf(after, 'zigznote_job_last_run_failed{job_name="cleanupOldWebhooks"}')).toBe(0);
    expect(valueOf(after, 'zigznote_job_last_run_failed{job_name="recheckPlanViolations"}')).toBe(
      1,
    );
    expect(valueOf(after, "zigznote_bots_stuck")).toBe(stuckBefore + 2);
    expect(
      valueOf(after, 'zigznote_bots_active{status="in_call_not_recording"}'),
    ).toBeGreaterThanOrEqual(3);
    expect(valueOf(after, "zigznote_notices_pending")).toBe(pendingBefore + 1);
    // Ten minutes by the app's clock (less the moments between the two clocks' readings).
    expect(valueOf(after, "zigznote_notices_oldest_pending_age_seconds")).toBeGreaterThan(590);
    expect(valueOf(after, 'zigznote_subscriptions{status="past_due"}')).toBe(pastDueBefore + 1);
  });

  it("report 0 as the last success of a job that never succeeded, its time for one that did", async () => {
    const testApp = open();
    const suffix = `${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
    const job = (name: string): JobDefinition => ({
      name,
      schedule: "*/5 * * * *",
      description: "test",
      leaseMs: 60_000,
      run: () => Promise.resolve({ rowsAffected: 0 }),
    });
    const never = job(`neverSucceeded_${suffix}`);
    const once = job(`succeededOnce_${suffix}`);
    const failing = job(`onlyFailed_${suffix}`);
    failing.run = () => Promise.reject(new Error("always fails"));
    const now = testApp.ctx.clock.now();
    for (const ran of [once, failing]) {
      await runJob(testApp.ctx, ran, { scheduledFor: now, instanceId: "t" });
    }
    // The state gauges of an app whose schedule is these three jobs.
    const metrics = createMetrics();
    registerStateMetrics({ ...testApp.ctx, metrics, jobs: [never, once, failing] });
    const text = await metrics.registry.metrics();
    const lastSuccess = (name: string) =>
      valueOf(text, `zigznote_job_last_success_timestamp_seconds{job_name="${name}"}`);
    // Absent would mean "could not be read" (the database down): the alert tells them apart.
    expect(lastSuccess(never.name)).toBe(0);
    expect(lastSuccess(failing.name)).toBe(0);
    expect(Math.abs(lastSuccess(once.name)! - now.getTime() / 1000)).toBeLessThan(60);
  });

  it("says the database is down, and still answers, when the database does not", async () => {
    const unreachable = createPrismaClient("postgresql://postgres@127.0.0.1:1/nowhere", {
      maxConnections: 1,
      connectionTimeoutMs: 500,
    });
    const testApp = open({ db: unreachable });
    try {
      const text = await scrape(testApp);
      expect(valueOf(text, "zigznote_database_up")).toBe(0);
      // No stale or invented state: the gauges read from the database have no value.
      expect(valueOf(text, "zigznote_bots_stuck")).toBeUndefined();
      expect(valueOf(text, "zigznote_notices_pending")).toBeUndefined();
      expect(
        valueOf(text, 'zigznote_job_last_success_timestamp_seconds{job_name="cleanupOldWebhooks"}'),
      ).toBeUndefined();
      // What does not need the database is still there.
      expect(valueOf(text, 'zigznote_job_interval_seconds{job_name="deliverNotifications"}')).toBe(
        60,
      );
    } finally {
      await unreachable.$disconnect();
    }
  });
});

describe("GET /metrics: job runs", () => {
  it("times runs up to an hour: the duration histogram's buckets go past 300 s to 3600 s", async () => {
    const testApp = open();
    const job = testApp.ctx.jobs.find((candidate) => candidate.name === "cleanupOldWebhooks")!;
    await runJob(testApp.ctx, job, { scheduledFor: new Date(), instanceId: "t" });
    const text = await scrape(testApp);
    const bounds = [
      ...text.matchAll(
        /^zigznote_job_duration_seconds_bucket\{le="([^"]+)",job_name="cleanupOldWebhooks"\}/gm,
      ),
    ].map((match) => match[1]);
    expect(bounds).toEqual(expect.arrayContaining(["300", "900", "1800", "3600", "+Inf"]));
  });
});

describe("GET /metrics: Redis", () => {
  it("says whether Redis answers, and says nothing of it without REDIS_URL", async () => {
    const url = new URL(testRedisUrl);
    const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 6379) });
    try {
      const withRedis = open({ redis: proxy.urlFor(testRedisUrl) });
      expect(valueOf(await scrape(withRedis), "zigznote_redis_up")).toBe(1);
      // Redis stops answering: the scrape still answers, within the command timeout.
      proxy.pause();
      const started = Date.now();
      const stalled = await scrape(withRedis);
      expect(valueOf(stalled, "zigznote_redis_up")).toBe(0);
      expect(valueOf(stalled, "zigznote_database_up")).toBe(1);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await proxy.close();
    }
    const withoutRedis = await scrape(open());
    expect(exposedNames(withoutRedis).has("zigznote_redis_up")).toBe(true);
    expect(valueOf(withoutRedis, "zigznote_redis_up")).toBeUndefined();
  });
});

describe("GET /metrics: 429s and API key lockouts", () => {
  it("counts failed API key attempts, the lockout they start, and the 429 by route and code", async () => {
    const testApp = open({ env: { API_KEY_MAX_FAILURES: "2" } });
    const { key } = await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"] });
    const wrong = formatApiKey(key.slice(8, 20), "0".repeat(32));
    const attempt = (token: string) =>
      request(testApp.app).get("/api/v1/me").set("Authorization", `Bearer ${token}`);
    expect((await attempt(wrong)).status).toBe(401);
    expect((await attempt(wrong)).status).toBe(401);
    const locked = await attempt(key);
    expect(locked.status).toBe(429);

    const text = await scrape(testApp);
    expect(valueOf(text, "zigznote_api_key_failures_total")).toBe(2);
    expect(valueOf(text, 'zigznote_api_key_lockouts_total{kind="pair"}')).toBe(1);
    expect(
      valueOf(
        text,
        `zigznote_http_rate_limited_total{route="/api/v1/me",error_code="${locked.body.error.code}"}`,
      ),
    ).toBe(1);
  });

  it("counts a lockout once when two instances' concurrent attempts cross the limit together", async () => {
    const env = { API_KEY_MAX_FAILURES: "2", REDIS_KEY_PREFIX: `lockouts-${Date.now()}` };
    const instances = [open({ env, redis: true }), open({ env, redis: true })];
    const { key } = await apiKeyHeaderFor(instances[0]!, { scopes: ["meetings:read"] });
    const wrong = formatApiKey(key.slice(8, 20), "0".repeat(32));
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        request(instances[i % 2]!.app)
          .get("/api/v1/me")
          .set("Authorization", `Bearer ${wrong}`),
      ),
    );
    expect(answers.map((answer) => answer.status)).toContain(401);

    let lockouts = 0;
    for (const instance of instances) {
      lockouts +=
        valueOf(await scrape(instance), 'zigznote_api_key_lockouts_total{kind="pair"}') ?? 0;
    }
    expect(lockouts).toBe(1);
  });
});

describe("GET /metrics: the counters the alerts read", () => {
  // A series that appears at 1 with its first event has no increase() in Prometheus: the first
  // failed notice, webhook or lockout of an instance would alert nobody.
  it("exposes every failure an alert counts at 0 before the first one", async () => {
    const text = await scrape(open());
    for (const type of Object.keys(EMAIL_TEMPLATES)) {
      expect([
        type,
        valueOf(text, `zigznote_notices_total{type="${type}",outcome="failed"}`),
      ]).toEqual([type, 0]);
    }
    for (const provider of WEBHOOK_PROVIDERS) {
      expect(valueOf(text, `webhook_events_total{provider="${provider}",outcome="failed"}`)).toBe(
        0,
      );
    }
    for (const kind of ["pair", "ip"]) {
      expect(valueOf(text, `zigznote_api_key_lockouts_total{kind="${kind}"}`)).toBe(0);
    }
  });
});
