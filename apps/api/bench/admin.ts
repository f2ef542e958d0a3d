/**
 * `pnpm bench:admin`: the admin console's read routes on a large tenant base.
 *
 * Seeds (once; reused while the counts match) 100,000 organizations with a user and a membership
 * each, 10,000 of them with a plan violation (plus 5,000 resolved ones in the last 30 days, with
 * their events), 2,000 past_due and 500 suspended subscriptions among 20,000, 50,000 notices,
 * 60,000 job runs over 30 days and 10,000 audit entries, all with generate_series SQL. Then, on
 * the app as the server runs it (in this process, over HTTP, a platform admin's session token),
 * for each admin read route:
 *   - p50 / p99 latency of BENCH_REQUESTS sequential requests after a warm-up (target p99 < 100 ms),
 *     each followed by a request of the baseline, `GET /api/v1/me` with the same token
 *     (authentication and two indexed reads), so that load from elsewhere on the machine weighs
 *     on both alike: the ratio p50 route / p50 baseline is the steadier figure;
 *   - the time PostgreSQL spends on the route's statements (EXPLAIN ANALYZE, summed);
 *   - the SQL statements one request sends, counted on two different targets (a small and a
 *     large organization, a first and a later page): they must be equal (a fixed number);
 *   - EXPLAIN ANALYZE of each statement: the rows read from `organizations` (scanned or
 *     filtered out), which must stay far below the table's size for every page. The overview's
 *     count by plan and status reads every organization by design (index-only) and is named.
 *
 * Not a test: figures depend on the machine. Exit status 1 when a target is missed.
 *
 * Env: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/zigznote_bench_admin;
 * created, migrated, seeded and reused), BENCH_REQUESTS (200), BENCH_RESEED=1 (seed again),
 * BENCH_SHOW_SQL=1 (print each route's statements with their time in EXPLAIN ANALYZE).
 */
import { generateKeyPairSync } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrismaClient } from "@zigznote/database";
import { prepareTestDatabase } from "@zigznote/database/testing";
import { Client } from "pg";
import { createApp } from "../src/app";
import { buildContext } from "../src/context";
import { signDevSessionToken } from "../src/lib/devSessionKey";
import { loadBenchConfig } from "./benchConfig";

const env = process.env;
const databaseUrl =
  env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_bench_admin";
const requests = Number(env.BENCH_REQUESTS ?? 200);
const isSqlShown = env.BENCH_SHOW_SQL === "1";
const ORGANIZATIONS = 100_000;
const P99_TARGET_MS = 100;
/** A page may read at most this many organizations' rows (the table holds 100,000). */
const ORGANIZATION_ROWS_PER_PAGE = 1_000;
const ADMIN_CLERK_ID = "user_bench_admin";

async function seed(client: Client): Promise<void> {
  const [{ count }] = (
    await client.query<{ count: string }>(
      "SELECT count(*) FROM organizations WHERE clerk_id LIKE 'org_bench_%'",
    )
  ).rows as [{ count: string }];
  if (Number(count) === ORGANIZATIONS && env.BENCH_RESEED !== "1") {
    console.log(`seed: reusing ${ORGANIZATIONS} organizations`);
    return;
  }
  const started = performance.now();
  const step = async (label: string, sql: string) => {
    const at = performance.now();
    const result = await client.query(sql);
    console.log(
      `  ${label}: ${result.rowCount ?? 0} rows in ${Math.round(performance.now() - at)} ms`,
    );
  };
  console.log("seed:");
  await client.query(
    "TRUNCATE organizations, users, job_runs, admin_audit_log, processed_webhooks CASCADE",
  );
  await step(
    "organizations",
    `INSERT INTO organizations (id, clerk_id, name, plan_slug, status, deleted_at, created_at)
     SELECT gen_random_uuid(), 'org_bench_' || i, 'Bench ' || md5(i::text) || ' ' || i,
            (ARRAY['free', 'pro', 'business'])[1 + i % 3],
            CASE WHEN i % 100 = 0 THEN 'deleted'::"OrganizationStatus" ELSE 'active' END,
            CASE WHEN i % 100 = 0 THEN now() END,
            now() - make_interval(mins => i)
       FROM generate_series(1, ${ORGANIZATIONS}) i`,
  );
  await step(
    "users",
    `INSERT INTO users (clerk_id, email)
     SELECT 'user_bench_' || i, 'user' || i || '@bench.test' FROM generate_series(1, ${ORGANIZATIONS}) i`,
  );
  await step(
    "memberships",
    `INSERT INTO memberships (organization_id, user_id, role)
     SELECT o.id, u.id, 'admin' FROM organizations o
       JOIN users u ON u.clerk_id = 'user_bench_' || substr(o.clerk_id, 11)`,
  );
  // 10,000 unresolved violations (every 10th organization), 5,000 resolved in the last 30 days
  // (others).
  await step(
    "violations",
    `INSERT INTO plan_violations (organization_id, type, action, limit_value, current_usage,
                                  detected_at, grace_ends_at, resolved_at, waived_until)
     SELECT o.id, t.type,
            CASE t.type WHEN 'meetings' THEN 'read_only' WHEN 'team_members' THEN 'notify_admin'
                        ELSE CASE WHEN n % 2 = 0 THEN 'grace_period' ELSE 'read_only' END END,
            CASE t.type WHEN 'storage' THEN 5368709120 ELSE 10 END,
            CASE t.type WHEN 'storage' THEN 6442450944 ELSE 12 END,
            now() - make_interval(hours => n % 720),
            CASE WHEN t.type = 'storage' THEN now() + make_interval(hours => 168 - n % 336) END,
            CASE WHEN n % 10 <> 0 THEN now() - make_interval(hours => n % 700) END,
            CASE WHEN n % 50 = 0 THEN now() + interval '3 days' END
       FROM (SELECT id, substr(clerk_id, 11)::int AS n FROM organizations) o
      CROSS JOIN LATERAL (SELECT (ARRAY['meetings', 'storage', 'team_members'])[1 + o.n / 10 % 3] AS type) t
      WHERE o.n % 10 = 0 OR o.n % 20 = 5`,
  );
  await step(
    "violation events",
    `INSERT INTO plan_violation_events (violation_id, at, event)
     SELECT id, detected_at, 'detected' FROM plan_violations
     UNION ALL
     SELECT id, resolved_at, 'resolved' FROM plan_violations WHERE resolved_at IS NOT NULL`,
  );
  await step(
    "organizations' violation copies",
    `UPDATE organizations o SET plan_violations = v.list, plan_violations_at = now()
       FROM (SELECT organization_id,
                    jsonb_agg(jsonb_build_object('type', type, 'action', action,
                      'limit', limit_value, 'current', current_usage,
                      'detectedAt', to_char(detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))) AS list
               FROM plan_violations WHERE resolved_at IS NULL GROUP BY organization_id) v
      WHERE o.id = v.organization_id`,
  );
  await step(
    "subscriptions",
    `INSERT INTO subscriptions (organization_id, plan_slug, stripe_subscription_id,
                                stripe_customer_id, status, grace_ends_at, payment_failed_at,
                                payment_retry_count)
     SELECT o.id, 'pro', 'sub_bench_' || o.n, 'cus_bench_' || o.n,
            CASE WHEN o.n % 50 = 1 THEN 'past_due'::"SubscriptionStatus"
                 WHEN o.n % 200 = 3 THEN 'suspended' ELSE 'active' END,
            CASE WHEN o.n % 50 = 1 THEN now() + make_interval(hours => o.n % 168) END,
            CASE WHEN o.n % 50 = 1 OR o.n % 200 = 3 THEN now() - interval '2 days' END,
            CASE WHEN o.n % 50 = 1 THEN 1 ELSE 0 END
       FROM (SELECT id, substr(clerk_id, 11)::int AS n FROM organizations) o
      WHERE o.n % 5 IN (1, 3)`,
  );
  await step(
    "notices",
    `INSERT INTO notification_outbox (organization_id, recipient_email, type, status, attempts,
                                      created_at, sent_at, last_error)
     SELECT o.id, 'user' || i || '@bench.test', 'plan.violation',
            (ARRAY['sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'pending', 'failed'])[1 + i % 10]::"NotificationStatus",
            1, now() - make_interval(mins => i), CASE WHEN i % 10 < 8 THEN now() - make_interval(mins => i) END,
            CASE WHEN i % 10 = 9 THEN 'smtp: 550 mailbox unavailable' END
       FROM generate_series(1, 50000) i
       JOIN organizations o ON o.clerk_id = 'org_bench_' || (i * 2 % ${ORGANIZATIONS} + 1)`,
  );
  await step(
    "job runs",
    `INSERT INTO job_runs (job_name, scheduled_for, instance_id, started_at, finished_at, outcome,
                           rows_affected, error)
     SELECT (ARRAY['deliverNotifications', 'deliverNotifications', 'deliverNotifications',
                   'cleanupOrphanedBots', 'retryRecordingImports', 'checkExpiredGracePeriods',
                   'checkStorageGracePeriods', 'recheckPlanViolations'])[1 + i % 8],
            date_trunc('minute', now()) - make_interval(mins => i), 'bench',
            date_trunc('minute', now()) - make_interval(mins => i),
            date_trunc('minute', now()) - make_interval(mins => i) + interval '2 seconds',
            CASE WHEN i % 53 = 0 THEN 'failed'::"JobOutcome" ELSE 'succeeded' END, i % 7,
            CASE WHEN i % 53 = 0 THEN 'database did not answer' END
       FROM generate_series(1, 60000) i`,
  );
  await step(
    "audit log",
    `INSERT INTO admin_audit_log (actor_user_id, action, target_type, target_id, organization_id,
                                  reason, before, after, created_at)
     SELECT u.id, 'violation.waive', 'violation', v.id::text, v.organization_id, 'bench',
            '{}'::jsonb, '{}'::jsonb, now() - make_interval(mins => (row_number() OVER ())::int)
       FROM (SELECT id FROM users WHERE clerk_id = 'user_bench_1') u
      CROSS JOIN (SELECT id, organization_id FROM plan_violations LIMIT 10000) v`,
  );
  await client.query("VACUUM ANALYZE");
  console.log(`seed: ${Math.round(performance.now() - started)} ms in all`);
}

interface Target {
  /** The route as the document names it. */
  name: string;
  /** Two paths of the same route over different data (the statement counts must match). */
  paths: [string, string];
  /** The overview's count reads every organization by design. */
  isFullCountAllowed?: boolean;
}

async function buildTargets(client: Client): Promise<Target[]> {
  const one = async (sql: string) => ((await client.query(sql)).rows[0] as { id: string }).id;
  const big = await one(`
    SELECT o.id FROM organizations o JOIN plan_violations v ON v.organization_id = o.id
     WHERE o.clerk_id LIKE 'org_bench_%' ORDER BY o.clerk_id LIMIT 1`);
  const small = await one(`SELECT id FROM organizations WHERE clerk_id = 'org_bench_7'`);
  const page = async (path: string) => {
    const response = await fetchJson(`${path}${path.includes("?") ? "&" : "?"}limit=50`);
    return `${path}${path.includes("?") ? "&" : "?"}limit=50&cursor=${encodeURIComponent(
      (response as { nextCursor: string }).nextCursor,
    )}`;
  };
  return [
    {
      name: "GET /admin/overview",
      paths: ["/api/v1/admin/overview", "/api/v1/admin/overview"],
      isFullCountAllowed: true,
    },
    {
      name: "GET /admin/violations (open, newest)",
      paths: [
        "/api/v1/admin/violations?limit=50",
        await page("/api/v1/admin/violations?status=open"),
      ],
    },
    {
      name: "GET /admin/violations (type, action, by grace end)",
      paths: [
        "/api/v1/admin/violations?type=storage&action=grace_period&sort=graceEndsAt&limit=50",
        await page("/api/v1/admin/violations?type=storage&sort=graceEndsAt"),
      ],
    },
    {
      name: "GET /admin/violations (waived / resolved)",
      paths: [
        "/api/v1/admin/violations?status=waived&limit=50",
        "/api/v1/admin/violations?status=resolved&limit=50",
      ],
    },
    {
      name: "GET /admin/violations?q= (name prefix / id)",
      paths: ["/api/v1/admin/violations?q=Bench%20a&limit=50", `/api/v1/admin/violations?q=${big}`],
    },
    {
      name: "GET /admin/organizations (newest)",
      paths: [
        "/api/v1/admin/organizations?limit=50",
        await page("/api/v1/admin/organizations?q=Bench"),
      ],
    },
    {
      name: "GET /admin/organizations?q= (name prefix / id)",
      paths: [
        "/api/v1/admin/organizations?q=bench%20f&limit=50",
        `/api/v1/admin/organizations?q=${small}`,
      ],
    },
    {
      name: "GET /admin/organizations/:id",
      paths: [`/api/v1/admin/organizations/${big}`, `/api/v1/admin/organizations/${small}`],
    },
    {
      name: "GET /admin/job-runs",
      paths: [
        "/api/v1/admin/job-runs?limit=50",
        await page("/api/v1/admin/job-runs?jobName=cleanupOrphanedBots&outcome=failed"),
      ],
    },
    {
      name: "GET /admin/audit-log",
      paths: ["/api/v1/admin/audit-log?limit=50", `/api/v1/admin/audit-log?targetId=${big}`],
    },
  ];
}

let baseUrl = "";
let authorization = "";

async function fetchJson(path: string): Promise<unknown> {
  const response = await fetch(`${baseUrl}${path}`, { headers: { authorization } });
  const body: unknown = await response.json();
  if (response.status !== 200) {
    throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface LoggedQuery {
  query: string;
  params: string;
}

/** Rows of `organizations` a plan read (returned by its scans or filtered out), recursively. */
function organizationRowsRead(plan: Record<string, unknown>): number {
  let rows = 0;
  if (plan["Relation Name"] === "organizations") {
    const loops = Number(plan["Actual Loops"] ?? 1);
    rows +=
      (Number(plan["Actual Rows"] ?? 0) + Number(plan["Rows Removed by Filter"] ?? 0)) * loops;
  }
  for (const child of (plan.Plans as Record<string, unknown>[] | undefined) ?? []) {
    rows += organizationRowsRead(child);
  }
  return rows;
}

async function main(): Promise<void> {
  console.log(`bench:admin on ${databaseUrl.replace(/\/\/[^@]*@/, "//")}`);
  await prepareTestDatabase(databaseUrl);
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  await seed(client);

  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const config = loadBenchConfig(databaseUrl, {
    JOBS_ENABLED: "false",
    CLERK_JWT_KEY: publicKey.export({ type: "spki", format: "pem" }).toString(),
    PLATFORM_ADMIN_USER_IDS: ADMIN_CLERK_ID,
  });
  const logged: LoggedQuery[] = [];
  let isLogging = false;
  const db = createPrismaClient(databaseUrl, {
    maxConnections: config.DATABASE_POOL_SIZE,
    log: [{ emit: "event", level: "query" }],
  });
  db.$on("query" as never, (event: LoggedQuery) => {
    if (isLogging && !/^(BEGIN|COMMIT|ROLLBACK)\b/i.test(event.query.trim())) logged.push(event);
  });
  const ctx = buildContext({ config, db });
  const server = await new Promise<Server>((resolve) => {
    const listening = createApp(ctx).listen(0, "127.0.0.1", () => resolve(listening));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  authorization = `Bearer ${signDevSessionToken(privateKey, {
    userId: ADMIN_CLERK_ID,
    orgId: "org_bench_1",
    orgSlug: "bench-1",
    role: "admin",
    ttlSeconds: 3600,
  })}`;

  let isMissed = false;
  try {
    const targets = await buildTargets(client);
    console.log(
      `\n${"route".padEnd(52)} ${"p50 ms".padStart(7)} ${"p99 ms".padStart(7)} ${"/me p50".padStart(7)} ${"ratio".padStart(6)} ${"db ms".padStart(6)} ${"queries".padStart(8)} ${"org rows".padStart(9)}`,
    );
    for (const target of targets) {
      // Statements per request, on both paths.
      const counts: number[] = [];
      let organizationRows = 0;
      /** PostgreSQL's execution time of the statements of the first path, summed. */
      let dbMs = 0;
      for (const path of target.paths) {
        logged.length = 0;
        isLogging = true;
        await fetchJson(path);
        isLogging = false;
        counts.push(logged.length);
        for (const { query, params } of logged) {
          const values = JSON.parse(params) as unknown[];
          const explained = await client.query<{
            "QUERY PLAN": [{ Plan: Record<string, unknown> }];
          }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${query}`, values);
          const explain = explained.rows[0]!["QUERY PLAN"][0] as {
            Plan: Record<string, unknown>;
            "Execution Time"?: number;
          };
          const read = organizationRowsRead(explain.Plan);
          if (path === target.paths[0]) dbMs += explain["Execution Time"] ?? 0;
          if (isSqlShown) {
            const ms = explain["Execution Time"]?.toFixed(2) ?? "?";
            console.log(
              `    ${ms} ms, ${read} org rows: ${query.replace(/\s+/g, " ").slice(0, 150)}`,
            );
          }
          const isFullCount = target.isFullCountAllowed && /GROUP BY plan_slug, status/.test(query);
          if (isFullCount) continue;
          organizationRows = Math.max(organizationRows, read);
          if (read > ORGANIZATION_ROWS_PER_PAGE) {
            isMissed = true;
            console.log(
              `  ! ${target.name} reads ${read} organizations: ${query.replace(/\s+/g, " ").slice(0, 160)}`,
            );
          }
        }
      }
      if (counts[0] !== counts[1]) {
        isMissed = true;
        console.log(`  ! ${target.name}: ${counts[0]} vs ${counts[1]} statements`);
      }

      for (let i = 0; i < 20; i += 1) await fetchJson(target.paths[i % 2]!);
      const latencies: number[] = [];
      const baseline: number[] = [];
      const timed = async (path: string, into: number[]) => {
        const started = performance.now();
        await fetchJson(path);
        into.push(performance.now() - started);
      };
      for (let i = 0; i < requests; i += 1) {
        await timed(target.paths[i % 2]!, latencies);
        await timed("/api/v1/me", baseline);
      }
      latencies.sort((a, b) => a - b);
      baseline.sort((a, b) => a - b);
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      const ratio = p50 / percentile(baseline, 50);
      if (p99 >= P99_TARGET_MS) isMissed = true;
      console.log(
        `${target.name.padEnd(52)} ${p50.toFixed(1).padStart(7)} ${p99.toFixed(1).padStart(7)} ${percentile(baseline, 50).toFixed(1).padStart(7)} ${ratio.toFixed(2).padStart(6)} ${dbMs.toFixed(1).padStart(6)} ${String(counts[0]).padStart(8)} ${String(organizationRows).padStart(9)}${p99 >= P99_TARGET_MS ? "  ! p99 over target" : ""}`,
      );
    }
    console.log(
      "\n/me p50: the baseline (GET /api/v1/me, same token) measured between the route's requests; " +
        "ratio: p50 / baseline p50; db ms: PostgreSQL's execution time of the route's statements " +
        "(EXPLAIN ANALYZE); queries: statements per request, authentication's included.",
    );
    console.log(
      `targets: p99 < ${P99_TARGET_MS} ms; the same statement count on both paths; at most ` +
        `${ORGANIZATION_ROWS_PER_PAGE} organization rows read per statement (the overview's count ` +
        `by plan and status reads all ${ORGANIZATIONS} by design, index-only).`,
    );
    console.log(isMissed ? "RESULT: a target was missed" : "RESULT: all targets met");
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await db.$disconnect();
    await client.end();
  }
  if (isMissed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
