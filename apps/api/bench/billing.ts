/**
 * `pnpm bench:billing`: times `checkPlanViolations` for one large organization (50,000 meetings
 * this month, 1,000 members, 100,000 storage objects, over every limit of the free plan) and
 * counts the SQL statements it sends, against a naive baseline measured in the same run (load
 * the rows and add them up in JavaScript). Not a test: it prints figures.
 *
 * Env: BENCH_DATABASE_URL (default: TEST_DATABASE_URL's server, database `<name>_bench`),
 * BENCH_RUNS (default 15), BENCH_MEETINGS / BENCH_MEMBERS / BENCH_OBJECTS (sizes).
 */
import { performance } from "node:perf_hooks";
import { createPrismaClient, type Db } from "@zigznote/database";
import { DEFAULT_TEST_DATABASE_URL, prepareTestDatabase } from "@zigznote/database/testing";
import { checkPlanViolations } from "../src/billing";
import { enqueueAdminNotices, type AdminNotice } from "../src/notifications";
import { startOfUtcMonth } from "../src/recordings";

const runs = Number(process.env.BENCH_RUNS ?? 15);
const meetings = Number(process.env.BENCH_MEETINGS ?? 50_000);
const members = Number(process.env.BENCH_MEMBERS ?? 1_000);
const objects = Number(process.env.BENCH_OBJECTS ?? 100_000);
// Notices queue in the outbox (the statement measured); nothing is delivered during the bench.
const settings = {
  storageGraceDays: 7,
  notices: { enqueue: (db: Db, notices: AdminNotice[]) => enqueueAdminNotices({ db }, notices) },
};

function benchUrl(): string {
  if (process.env.BENCH_DATABASE_URL) return process.env.BENCH_DATABASE_URL;
  const url = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
  url.pathname = `${url.pathname.replace(/^\//, "")}_bench`;
  return url.toString();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const url = benchUrl();
  await prepareTestDatabase(url);
  const db = createPrismaClient(url, {
    maxConnections: 2,
    log: [{ emit: "event", level: "query" }],
  });
  let queries = 0;
  let logged: string[] = [];
  // Data statements only (Prisma logs COMMIT but not BEGIN; the transaction is one round each).
  db.$on("query" as never, (event: { query: string }) => {
    const sql = event.query.replace(/\s+/g, " ").trim();
    if (/^(BEGIN|COMMIT|ROLLBACK)\b/i.test(sql)) return;
    queries += 1;
    logged.push(sql.slice(0, 60));
  });

  try {
    console.log(`bench:billing on ${url.replace(/\/\/[^@]*@/, "//")}`);
    await db.$executeRaw`DELETE FROM organizations WHERE clerk_id = 'bench_org'`;
    await db.$executeRaw`DELETE FROM users WHERE clerk_id LIKE 'bench_user_%'`;
    const seedStart = performance.now();
    const [org] = await db.$queryRaw<{ id: string }[]>`
      INSERT INTO organizations (clerk_id, name, plan_slug) VALUES ('bench_org', 'Bench', 'free')
      RETURNING id`;
    const orgId = org!.id;
    await db.$executeRaw`
      INSERT INTO users (clerk_id, email)
      SELECT 'bench_user_' || i, 'bench' || i || '@example.test' FROM generate_series(1, ${members}) i`;
    await db.$executeRaw`
      INSERT INTO memberships (organization_id, user_id, role)
      SELECT ${orgId}::uuid, id, CASE WHEN clerk_id = 'bench_user_1' THEN 'admin'::"Role"
                                      ELSE 'member'::"Role" END
        FROM users WHERE clerk_id LIKE 'bench_user_%'`;
    const monthStart = startOfUtcMonth(new Date());
    await db.$executeRaw`
      INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform,
                            created_at)
      SELECT ${orgId}::uuid, 'Meeting ' || i, 'https://zoom.us/j/' || i, 'zoom:' || i, 'zoom',
             ${monthStart}::timestamptz + (i % 1000) * interval '1 second'
        FROM generate_series(1, ${meetings}) i`;
    await db.$executeRaw`
      WITH m AS (SELECT id, row_number() OVER () AS n FROM meetings
                  WHERE organization_id = ${orgId}::uuid)
      INSERT INTO storage_objects (organization_id, meeting_id, key, content_type, size_bytes)
      SELECT ${orgId}::uuid, m.id, 'bench/' || i, 'video/mp4', 1048576
        FROM generate_series(1, ${objects}) i JOIN m ON m.n = 1 + (i % ${meetings})`;
    // As autovacuum would have done by now: statistics and the visibility map (index-only scans).
    await db.$executeRawUnsafe(
      "VACUUM ANALYZE organizations, memberships, users, meetings, storage_objects",
    );
    console.log(
      `seeded ${meetings} meetings, ${members} members, ${objects} storage objects in ${(
        (performance.now() - seedStart) /
        1000
      ).toFixed(1)} s`,
    );

    const now = new Date();
    // First check: records the three violations and queues the admin notice.
    queries = 0;
    logged = [];
    let t = performance.now();
    const first = await checkPlanViolations(
      { db: db, settings: settings },
      { organizationId: orgId, now: now },
    );
    const firstMs = performance.now() - t;
    const firstQueries = queries;
    const firstStatements = logged;
    console.log(
      `first check: ${firstMs.toFixed(1)} ms, ${firstQueries} SQL statements in one transaction, violations: ${first.violations
        .map((v) => `${v.type}=${v.current}/${v.limit} ${v.action}`)
        .join(", ")}`,
    );

    console.log(`  statements: ${firstStatements.join(" | ")}`);
    const times: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < runs + 2; i += 1) {
      queries = 0;
      t = performance.now();
      await checkPlanViolations(
        { db: db, settings: settings },
        { organizationId: orgId, now: now },
      );
      if (i >= 2) {
        times.push(performance.now() - t);
        counts.push(queries);
      }
    }

    // Baseline: the naive way (fetch the rows, add them up in JavaScript).
    const baseline: number[] = [];
    let baselineQueries = 0;
    for (let i = 0; i < 3; i += 1) {
      queries = 0;
      t = performance.now();
      const [sizes, monthMeetings, memberRows] = await Promise.all([
        db.storageObject.findMany({
          where: { organizationId: orgId },
          select: { sizeBytes: true },
        }),
        db.meeting.findMany({
          where: { organizationId: orgId, createdAt: { gte: monthStart } },
          select: { id: true },
        }),
        db.membership.findMany({ where: { organizationId: orgId }, select: { id: true } }),
      ]);
      sizes.reduce((sum, row) => sum + row.sizeBytes, 0n);
      void monthMeetings.length;
      void memberRows.length;
      baseline.push(performance.now() - t);
      baselineQueries = queries;
    }

    const ours = median(times);
    const naive = median(baseline);
    console.log(
      `checkPlanViolations (steady state): median ${ours.toFixed(1)} ms over ${runs} runs ` +
        `(min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)}), ` +
        `SQL statements per run: ${[...new Set(counts)].join("/")} (in one transaction)`,
    );
    console.log(
      `baseline (load rows, sum in JS): median ${naive.toFixed(1)} ms, ${baselineQueries} statements; ` +
        `ratio baseline/ours: ${(naive / ours).toFixed(1)}x`,
    );
    console.log(`target < 50 ms: ${ours < 50 ? "met" : "NOT met"}`);
  } finally {
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
