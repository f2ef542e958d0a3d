/**
 * `pnpm bench:limits`: what the exact plan limits (issue 22) cost on `POST /api/v1/meetings`.
 *
 * 1. Latency against the organization's size. Two organizations on the Pro plan (200 meetings a
 *    month), each with 100 meetings this month: "small" with 1,000 stored objects, "large" with
 *    1,000,000 (on 100,000 meetings of earlier months). One connection, requests one after the
 *    other in alternating batches (small, large); after each batch the meetings it created are
 *    moved to the month before, so every request sees the same month. Prints the median and p99
 *    of each and the ratio large/small (target <= 1.2), for the app and, for comparison, for
 *    the create as it was guarded until issue 22 (a check before the write, with the usage sum
 *    over every stored object) on the bare baseline.
 * 2. Throughput under contention: BENCH_CONNECTIONS connections creating meetings in one
 *    organization. Baseline: today's unguarded create (before issue 22, an organization
 *    without a meeting limit: the access row read, then the INSERT, no lock), on bare Express +
 *    pg (bench/apiBare.ts, `createGuard: "before"`). Measured against it, in alternating rounds:
 *    creates at the limit (an organization with 200 of 200: every create refused with 403 after
 *    the locked count), and creates admitted on an unlimited plan (the organization's lock, no
 *    count), each by the app and by the bare server running the app's SQL. Prints req/s, p50,
 *    p99 and the ratio to the baseline.
 *
 * The million rows are made with set-based SQL (INSERT ... SELECT generate_series) and kept
 * between runs; the organizations are recognised by name. Servers run in their own processes
 * (bench/apiServer.ts), NODE_ENV=production, logs silent; requests carry API keys. Not a test:
 * figures depend on the machine; read the ratios of one run.
 *
 * Env: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/zigznote_bench_limits;
 * created, migrated and reused), BENCH_LATENCY_REQUESTS (1,000 per organization and server),
 * BENCH_CONNECTIONS (10), BENCH_POOL_SIZE (10), BENCH_DURATION_SECONDS (6 per scenario and
 * server, in 2 alternating rounds), BENCH_LARGE_OBJECTS (1,000,000), BENCH_TIMEOUT_SECONDS (900).
 */
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { prepareTestDatabase } from "@zigznote/database/testing";
import { Pool } from "pg";
import { createApiKey } from "../src/identity";
import { requestsPerSecond, runLoad, type LoadSample } from "./load";
import { formatTable, percentile } from "./report";
import { children, ServerProcess, stopAfter } from "./serverProcess";

const env = process.env;
const databaseUrl =
  env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_bench_limits";
const latencyRequests = Number(env.BENCH_LATENCY_REQUESTS ?? 1_000);
const connections = Number(env.BENCH_CONNECTIONS ?? 10);
const poolSize = Number(env.BENCH_POOL_SIZE ?? 10);
const durationSeconds = Number(env.BENCH_DURATION_SECONDS ?? 6);
const largeObjects = Number(env.BENCH_LARGE_OBJECTS ?? 1_000_000);
const timeoutSeconds = Number(env.BENCH_TIMEOUT_SECONDS ?? 900);
const SMALL_OBJECTS = 1_000;
const OBJECTS_PER_MEETING = 10;
const MEETINGS_THIS_MONTH = 100;
const PRO_LIMIT = 200;
const BATCH = 50;
const ROUNDS = 2;
const NAME = "bench:limits ";

/** Where the servers forked by this bench find the database. */
const serverSettings = { databaseUrl, poolSize };

interface Organization {
  id: string;
  name: string;
  headers: Record<string, string>;
}

/** Finds the organization by name, or makes it with `make` (then gives it an API key). */
async function organization(
  db: PrismaClient,
  pool: Pool,
  name: string,
  plan: string,
  make: (id: string) => Promise<void>,
  isReady: (id: string) => Promise<boolean>,
): Promise<Organization> {
  const fullName = `${NAME}${name}`;
  const existing = await pool.query<{ id: string }>(
    "SELECT id FROM organizations WHERE name = $1 AND plan_slug = $2",
    [fullName, plan],
  );
  let id = existing.rows[0]?.id;
  if (!id || !(await isReady(id))) {
    await pool.query("DELETE FROM organizations WHERE name = $1", [fullName]);
    const created = await pool.query<{ id: string }>(
      `INSERT INTO organizations (name, clerk_id, plan_slug) VALUES ($1, $2, $3) RETURNING id`,
      [fullName, `org_bench_limits_${name}_${Date.now()}`, plan],
    );
    id = created.rows[0]!.id;
    const started = performance.now();
    await make(id);
    console.log(`  made ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  await pool.query("DELETE FROM api_keys WHERE organization_id = $1::uuid", [id]);
  const { plainKey } = await createApiKey(
    { db },
    { organizationId: id, name: "bench:limits", scopes: ["meetings:read", "meetings:write"] },
  );
  return {
    id,
    name,
    headers: { authorization: `Bearer ${plainKey}`, "content-type": "application/json" },
  };
}

function monthStart(now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
}

/** `count` meetings of earlier months and `perMeeting` stored objects on each, set-based. */
async function storedObjects(pool: Pool, id: string, count: number, perMeeting: number) {
  const meetings = Math.ceil(count / perMeeting);
  await pool.query(
    `INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform,
                           created_at, updated_at)
     SELECT $1::uuid, 'bench:old', 'https://zoom.us/j/' || (70000000000 + i),
            'zoom:' || (70000000000 + i), 'zoom', $3::timestamptz - i * interval '1 second',
            $3::timestamptz - i * interval '1 second'
       FROM generate_series(1, $2::int) AS i`,
    [id, meetings, new Date(monthStart().getTime() - 86_400_000)],
  );
  await pool.query(
    `INSERT INTO storage_objects (organization_id, meeting_id, key, content_type, size_bytes,
                                  created_at)
     SELECT m.organization_id, m.id, 'bench-limits/' || m.id || '/' || j, 'video/mp4', 1000,
            m.created_at
       FROM meetings m CROSS JOIN generate_series(1, $2::int) AS j
      WHERE m.organization_id = $1::uuid AND m.title = 'bench:old'
      LIMIT $3::int`,
    [id, perMeeting, count],
  );
}

/** `count` meetings this month (the base every latency request sees). */
async function meetingsThisMonth(pool: Pool, id: string, count: number) {
  await pool.query(
    `INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform,
                           created_at, updated_at)
     SELECT $1::uuid, 'bench:base', 'https://zoom.us/j/' || (60000000000 + i),
            'zoom:' || (60000000000 + i), 'zoom', $3::timestamptz + i * interval '1 second',
            $3::timestamptz + i * interval '1 second'
       FROM generate_series(1, $2::int) AS i`,
    [id, count, monthStart()],
  );
}

async function countObjects(pool: Pool, id: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM storage_objects WHERE organization_id = $1::uuid",
    [id],
  );
  return Number(rows[0]?.n ?? 0);
}

async function countThisMonth(pool: Pool, id: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    "SELECT count(*) AS n FROM meetings WHERE organization_id = $1::uuid AND created_at >= $2",
    [id, monthStart()],
  );
  return Number(rows[0]?.n ?? 0);
}

const BODY = JSON.stringify({ title: "Weekly sync", meetingUrl: "https://zoom.us/j/85012345678" });

/** One POST /meetings; its latency in ms and status. */
async function create(url: string, headers: Record<string, string>) {
  const started = performance.now();
  const response = await fetch(`${url}/api/v1/meetings`, { method: "POST", headers, body: BODY });
  await response.arrayBuffer();
  return { ms: performance.now() - started, status: response.status };
}

/** The meetings the bench created this month move to last month: the month's count stays put. */
async function resetMonth(pool: Pool, id: string) {
  await pool.query(
    `UPDATE meetings SET created_at = created_at - interval '40 days'
      WHERE organization_id = $1::uuid AND title = 'Weekly sync' AND created_at >= $2`,
    [id, monthStart()],
  );
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

/** Part 1: sequential creates, alternating batches between the two organizations. */
async function measureLatency(
  pool: Pool,
  server: ServerProcess,
  organizations: Organization[],
): Promise<Map<string, number[]>> {
  const latencies = new Map(organizations.map((org) => [org.name, [] as number[]]));
  let unexpected = 0;
  for (const org of organizations) {
    // Warm-up: connections, JIT, the key cache.
    for (let i = 0; i < 20; i += 1) await create(server.url, org.headers);
    await resetMonth(pool, org.id);
  }
  for (let done = 0; done < latencyRequests; done += BATCH) {
    for (const org of organizations) {
      const batch = Math.min(BATCH, latencyRequests - done);
      for (let i = 0; i < batch; i += 1) {
        const { ms: elapsed, status } = await create(server.url, org.headers);
        if (status !== 201) unexpected += 1;
        latencies.get(org.name)!.push(elapsed);
      }
      await resetMonth(pool, org.id);
    }
  }
  if (unexpected > 0) throw new Error(`${server.kind}: ${unexpected} creates did not answer 201`);
  return latencies;
}

/** Part 2: `connections` connections creating in one organization for `seconds`. */
async function load(
  server: ServerProcess,
  org: Organization,
  seconds: number,
  into: LoadSample,
): Promise<void> {
  await runLoad(
    {
      url: `${server.url}/api/v1/meetings`,
      connections,
      duration: seconds,
      requests: [{ method: "POST", headers: org.headers, body: BODY }],
    },
    into,
  );
}

async function main(): Promise<void> {
  const started = performance.now();
  stopAfter("bench:limits", timeoutSeconds);

  console.log(`preparing ${new URL(databaseUrl).pathname.slice(1)} ...`);
  await prepareTestDatabase(databaseUrl);
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const db = createPrismaClient(databaseUrl, { maxConnections: 2 });
  const servers: ServerProcess[] = [];
  try {
    const withObjects = (objects: number) => ({
      make: async (id: string) => {
        await storedObjects(pool, id, objects, OBJECTS_PER_MEETING);
        await meetingsThisMonth(pool, id, MEETINGS_THIS_MONTH);
        await pool.query("ANALYZE meetings, storage_objects");
      },
      isReady: async (id: string) =>
        (await countObjects(pool, id)) === objects &&
        (await countThisMonth(pool, id)) === MEETINGS_THIS_MONTH,
    });
    const small = withObjects(SMALL_OBJECTS);
    const large = withObjects(largeObjects);
    const orgSmall = await organization(db, pool, "small", "pro", small.make, small.isReady);
    const orgLarge = await organization(db, pool, "large", "pro", large.make, large.isReady);
    // The month may have turned since the organizations were made: the base is this month's.
    for (const org of [orgSmall, orgLarge]) {
      await resetMonth(pool, org.id);
      if ((await countThisMonth(pool, org.id)) !== MEETINGS_THIS_MONTH) {
        await pool.query(
          "DELETE FROM meetings WHERE organization_id = $1::uuid AND title = 'bench:base'",
          [org.id],
        );
        await meetingsThisMonth(pool, org.id, MEETINGS_THIS_MONTH);
      }
    }
    const atLimit = await organization(
      db,
      pool,
      "at-limit",
      "pro",
      (id) => meetingsThisMonth(pool, id, PRO_LIMIT),
      async (id) => (await countThisMonth(pool, id)) === PRO_LIMIT,
    );
    if ((await countThisMonth(pool, atLimit.id)) !== PRO_LIMIT) {
      await pool.query("DELETE FROM meetings WHERE organization_id = $1::uuid", [atLimit.id]);
      await meetingsThisMonth(pool, atLimit.id, PRO_LIMIT);
    }
    const unlimited = await organization(
      db,
      pool,
      "unlimited",
      "business",
      () => Promise.resolve(),
      () => Promise.resolve(true),
    );
    await pool.query("DELETE FROM meetings WHERE organization_id = $1::uuid", [unlimited.id]);

    const [app, bare, bareBefore] = await Promise.all([
      ServerProcess.start("app", serverSettings),
      ServerProcess.start("bare", serverSettings),
      ServerProcess.start("bare-before", serverSettings),
    ]);
    servers.push(app, bare, bareBefore);

    // Part 1.
    console.log(
      `\n1. POST /api/v1/meetings latency, Pro plan (${PRO_LIMIT} a month), ` +
        `${MEETINGS_THIS_MONTH} meetings this month, one connection, ` +
        `${latencyRequests} requests per organization in batches of ${BATCH}`,
    );
    const latencyTable = [["server", "stored objects", "median", "p99", "median x", "p99 x"]];
    const verdicts: string[] = [];
    for (const [server, label] of [
      [app, "app (exact guard)"],
      [bareBefore, "bare, guard before the write (until issue 22)"],
    ] as const) {
      const latencies = await measureLatency(pool, server, [orgSmall, orgLarge]);
      const stats = [orgSmall, orgLarge].map((org) => {
        const sorted = [...latencies.get(org.name)!].sort((a, b) => a - b);
        return { median: percentile(sorted, 50), p99: percentile(sorted, 99) };
      });
      const [s, l] = stats as [(typeof stats)[number], (typeof stats)[number]];
      latencyTable.push([
        label,
        SMALL_OBJECTS.toLocaleString("en"),
        ms(s.median),
        ms(s.p99),
        "",
        "",
      ]);
      latencyTable.push([
        "",
        largeObjects.toLocaleString("en"),
        ms(l.median),
        ms(l.p99),
        (l.median / s.median).toFixed(2),
        (l.p99 / s.p99).toFixed(2),
      ]);
      if (server === app) {
        const ratio = l.median / s.median;
        verdicts.push(
          `app: median ${largeObjects.toLocaleString("en")} / ${SMALL_OBJECTS.toLocaleString("en")} ` +
            `objects = ${ratio.toFixed(2)} (target <= 1.2) -> ${ratio <= 1.2 ? "MET" : "NOT MET"}`,
        );
      }
    }
    console.log(formatTable(latencyTable));
    for (const verdict of verdicts) console.log(verdict);

    // Part 2.
    console.log(
      `\n2. POST /api/v1/meetings throughput, ${connections} connections on one organization, ` +
        `${durationSeconds} s per scenario in ${ROUNDS} alternating rounds (pool ${poolSize})`,
    );
    const scenarios = [
      {
        label: "baseline: today's unguarded create (bare, no limit, no lock)",
        server: bareBefore,
        org: unlimited,
        status: 201,
      },
      {
        label: "at the limit, refused after the locked count (app)",
        server: app,
        org: atLimit,
        status: 403,
      },
      {
        label: "at the limit, refused after the locked count (bare, same SQL)",
        server: bare,
        org: atLimit,
        status: 403,
      },
      {
        label: "unlimited plan, admitted under the lock (app)",
        server: app,
        org: unlimited,
        status: 201,
      },
      {
        label: "unlimited plan, admitted under the lock (bare, same SQL)",
        server: bare,
        org: unlimited,
        status: 201,
      },
    ];
    const samples = scenarios.map((): LoadSample => ({
      latencies: [],
      seconds: 0,
      statuses: new Map(),
      errors: 0,
    }));
    // Warm-up of every scenario, then the measured rounds, alternating the order.
    for (const scenario of scenarios) {
      await load(scenario.server, scenario.org, 1, {
        latencies: [],
        seconds: 0,
        statuses: new Map(),
        errors: 0,
      });
    }
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = round % 2 === 0 ? scenarios.keys() : [...scenarios.keys()].reverse();
      for (const index of order) {
        const scenario = scenarios[index]!;
        await load(scenario.server, scenario.org, durationSeconds / ROUNDS, samples[index]!);
      }
    }
    const baseline = samples[0]!;
    const table = [["scenario", "req/s", "p50", "p99", "ratio to baseline", "answers"]];
    let unexpected = 0;
    for (const [index, scenario] of scenarios.entries()) {
      const sample = samples[index]!;
      const sorted = [...sample.latencies].sort((a, b) => a - b);
      const wrong = [...sample.statuses].filter(([status]) => status !== scenario.status);
      unexpected += sample.errors + wrong.reduce((sum, [, count]) => sum + count, 0);
      table.push([
        scenario.label,
        requestsPerSecond(sample).toFixed(0),
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 99)),
        index === 0 ? "1.00" : (requestsPerSecond(sample) / requestsPerSecond(baseline)).toFixed(2),
        [...sample.statuses].map(([status, count]) => `${count} x ${status}`).join(", "),
      ]);
    }
    console.log(formatTable(table));
    const atLimitCount = await countThisMonth(pool, atLimit.id);
    console.log(
      `the at-limit organization ends with ${atLimitCount} meetings this month (limit ${PRO_LIMIT})`,
    );
    if (atLimitCount !== PRO_LIMIT || unexpected > 0) {
      console.error(`unexpected: ${unexpected} answers, ${atLimitCount} meetings`);
      process.exitCode = 1;
    }
    console.log(
      "creates of one organization take turns on its row lock (the price of an exact limit), " +
        "so contention on one organization, not CPU, sets these rates",
    );
  } finally {
    for (const server of servers) await server.close().catch(() => undefined);
    await pool.end();
    await db.$disconnect();
    console.log(`bench:limits took ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
});
