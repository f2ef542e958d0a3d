/**
 * `pnpm bench:api`: the API's common routes against a bare Express 5 + pg server that runs the
 * same SQL (bench/apiBare.ts), in one run.
 *
 *   GET /api/v1/me, GET /api/v1/meetings (first page; 1,000 meetings in the organization),
 *   GET /api/v1/meetings/:id, POST /api/v1/meetings, PATCH /api/v1/meetings/:id (title)
 *
 * Each server runs in its own process (bench/apiServer.ts): the app exactly as `startServer`
 * starts it, NODE_ENV=production, logs silent, jobs off, no Redis; both with the same pool size.
 * Requests carry an API key (the app's key cache is on, as in production). autocannon in this
 * process drives one server at a time with the same connection count; both servers are first
 * warmed up on every route (the JIT settles before anything is measured), then each route is
 * measured in alternating rounds so that load from elsewhere on the machine weighs on both alike. Prints req/s, p50 and p99 per route and server, the ratio app/bare
 * (targets: >= 0.6 and p99 <= 2x), the CPU time each server process spent per response (steadier
 * than req/s when others load the machine), the SQL statements per request of both, and the
 * app's CPU profile under the same load afterwards (top frames by self time; self time by package
 * per route). The profiles are kept as .cpuprofile files (open them in Chrome DevTools).
 *
 * Not a test: figures depend on the machine; compare the ratios of one run.
 *
 * Env: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/zigznote_bench_api;
 * created, migrated and reused), BENCH_CONNECTIONS (10), BENCH_POOL_SIZE (10),
 * BENCH_DURATION_SECONDS (6 per route and server, in BENCH_ROUNDS (2) rounds), BENCH_WARMUP_SECONDS (2),
 * BENCH_PROFILE_SECONDS (2 per route; 0 = no profile), BENCH_TIMEOUT_SECONDS (480, 3600 for a
 * memory run: the whole run is killed after it), BENCH_SHOW_SQL=1 (print the app's statements per route), BENCH_ROUTES
 * (a subset, comma-separated: me, list, get, create, update).
 *
 * Then the cost of tracing on GET /api/v1/me (bench/apiTracing.ts): the API before tracing, with
 * tracing off (no endpoint), exporting every request's spans to an OTLP receiver here, one in ten
 * of them, and every request without the statements' spans, in alternating rounds.
 * BENCH_TRACING=0 skips it, =only runs it alone; BENCH_TRACING_ROUNDS (6), BENCH_TRACING_SECONDS
 * (3 per round and server).
 *
 * BENCH_MEMORY=1: a memory run instead. Only the app runs; the routes take turns in blocks of
 * 10,000 requests until BENCH_MEMORY_REQUESTS (1,000,000) have been answered, and the app's RSS
 * and heap are printed after the first 10,000 and at every tenth of the run (target: RSS at the
 * end at most 10% above RSS after 10,000). Each reading follows a full garbage collection in the
 * server, so it shows what is retained rather than when the collector last ran.
 */
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import autocannon from "autocannon";
import { createPrismaClient, databasePackageRoot } from "@zigznote/database";
import { createOrganization, prepareTestDatabase } from "@zigznote/database/testing";
import pg, { Pool } from "pg";
import { createApp } from "../src/app";
import { loadConfig } from "../src/config";
import { buildContext } from "../src/context";
import { createApiKey } from "../src/identity";
import { createBareApp } from "./apiBare";
import type { ServerKind } from "./apiServer";
import { runTracingBench } from "./apiTracing";
import { packageOf, selfTime, topShares, type CpuProfile } from "./cpuProfile";
import { requestsPerSecond, runLoad, type LoadSample } from "./load";
import { formatTable, percentile, roundSpread } from "./report";
import { children, ServerProcess, stopAfter } from "./serverProcess";

const env = process.env;
const databaseUrl =
  env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_bench_api";
const connections = Number(env.BENCH_CONNECTIONS ?? 10);
const poolSize = Number(env.BENCH_POOL_SIZE ?? 10);
const durationSeconds = Number(env.BENCH_DURATION_SECONDS ?? 6);
const warmupSeconds = Number(env.BENCH_WARMUP_SECONDS ?? 2);
const profileSeconds = Number(env.BENCH_PROFILE_SECONDS ?? 2);
const isSqlShown = env.BENCH_SHOW_SQL === "1";
const isMemoryRun = env.BENCH_MEMORY === "1";
// A memory run of 1,000,000 requests takes 15-25 minutes on a 2-core machine.
const timeoutSeconds = Number(env.BENCH_TIMEOUT_SECONDS ?? (isMemoryRun ? 3600 : 480));
const memoryRequests = Number(env.BENCH_MEMORY_REQUESTS ?? 1_000_000);
const MEMORY_BLOCK = 10_000;
const selectedRoutes = env.BENCH_ROUTES ? new Set(env.BENCH_ROUTES.split(",")) : null;
/** The tracing comparison (bench/apiTracing.ts): on unless BENCH_TRACING=0; alone with =only. */
const tracingMode = env.BENCH_TRACING ?? "1";
const tracingRounds = Number(env.BENCH_TRACING_ROUNDS ?? 6);
const tracingRoundSeconds = Number(env.BENCH_TRACING_SECONDS ?? 3);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 2);
const MEETINGS = 1_000;
const ORG_NAME_PREFIX = "bench:api ";

/** One measured route; `path` is called for every request (ids rotate over the meetings). */
interface Route {
  /** For BENCH_ROUTES. */
  key: "me" | "list" | "get" | "create" | "update";
  name: string;
  method: "GET" | "POST" | "PATCH";
  path: () => string;
  body?: string;
  status: number;
  /** Headers made anew for each request (a fresh Idempotency-Key). */
  headers?: () => Record<string, string>;
}

/**
 * Two ways of serving one route, measured in the same alternating rounds: `a` (the feature on)
 * against `b` (off). For BENCH_ROUTES: `create-keyed`, `me-limit`.
 */
interface Pair {
  key: "create-keyed" | "me-limit" | "me-limit-memory";
  name: string;
  a: { server: ServerKind; route: Route };
  b: { server: ServerKind; route: Route };
  target: number;
}

/** What a server did on one route over all its rounds. */
interface Sample extends LoadSample {
  /** CPU time (user + system) the server process used meanwhile. */
  cpuMicros: number;
  /** CPU time of the PostgreSQL server's processes meanwhile (0 where /proc cannot tell). */
  databaseCpuMicros: number;
  /** CPU time of the Redis server meanwhile (0 where /proc cannot tell). */
  redisCpuMicros: number;
}

const CLOCK_TICKS_PER_SECOND = 100;

/**
 * CPU time (user + system) used so far by the processes whose command starts with `command` on
 * this machine, from Linux's /proc (0 elsewhere): `postgres` is the database's share of a
 * request and `redis-server` Redis's, which the server's own CPU time leaves out. Other clients'
 * work on the same servers counts too: run benches alone.
 */
async function processCpuMicros(command: string): Promise<number> {
  let ticks = 0;
  const entries = await readdir("/proc").catch(() => [] as string[]);
  await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (pid) => {
        const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
        const close = stat.lastIndexOf(")");
        if (!stat.slice(0, close).includes(`(${command}`)) return;
        // After the command: state (field 3), ... utime (14), stime (15), and cutime (16),
        // cstime (17): the CPU of exited children (backends whose connection closed meanwhile),
        // which the postmaster collects, so that the sum never goes back.
        const fields = stat.slice(close + 2).split(" ");
        ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      }),
  );
  return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}

const databaseCpuMicros = () => processCpuMicros("postgres");
const redisCpuMicros = () => processCpuMicros("redis-server");

/** Where the servers forked by this bench find the database. */
const serverSettings = { databaseUrl, poolSize };

function emptySample(): Sample {
  return {
    latencies: [],
    cpuMicros: 0,
    databaseCpuMicros: 0,
    redisCpuMicros: 0,
    seconds: 0,
    statuses: new Map(),
    errors: 0,
  };
}

/** Adds what `from` measured to `into` (a round's sample to its side's whole). */
function mergeSample(into: Sample, from: Sample): void {
  for (const latency of from.latencies) into.latencies.push(latency);
  for (const [status, count] of from.statuses) {
    into.statuses.set(status, (into.statuses.get(status) ?? 0) + count);
  }
  into.cpuMicros += from.cpuMicros;
  into.databaseCpuMicros += from.databaseCpuMicros;
  into.redisCpuMicros += from.redisCpuMicros;
  into.seconds += from.seconds;
  into.errors += from.errors;
}

/** autocannon's request of `route`: its path and headers made anew for each request. */
function routeRequests(route: Route, headers: Record<string, string>): autocannon.Request[] {
  return [
    {
      method: route.method,
      headers,
      ...(route.body === undefined ? {} : { body: route.body }),
      setupRequest: (request) => ({
        ...request,
        path: route.path(),
        ...(route.headers ? { headers: { ...request.headers, ...route.headers() } } : {}),
      }),
    },
  ];
}

/** Drives `server` on `route` for `seconds`, adding to `into`. */
async function load(
  server: ServerProcess,
  route: Route,
  headers: Record<string, string>,
  seconds: number,
  into: Sample = emptySample(),
): Promise<Sample> {
  const before = await server.usage();
  const databaseBefore = await databaseCpuMicros();
  const redisBefore = await redisCpuMicros();
  await runLoad(
    {
      url: `${server.url}${route.path()}`,
      connections,
      duration: seconds,
      requests: routeRequests(route, headers),
    },
    into,
  );
  into.cpuMicros += (await server.usage()).cpuMicros - before.cpuMicros;
  into.databaseCpuMicros += (await databaseCpuMicros()) - databaseBefore;
  into.redisCpuMicros += (await redisCpuMicros()) - redisBefore;
  return into;
}

/** Sends exactly `amount` requests of `route` to `server`; the count of unexpected answers. */
async function loadAmount(
  server: ServerProcess,
  route: Route,
  headers: Record<string, string>,
  amount: number,
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let unexpected = 0;
    const instance = autocannon(
      {
        url: `${server.url}${route.path()}`,
        connections,
        amount,
        requests: routeRequests(route, headers),
      },
      (error: unknown, result) => {
        if (error) {
          reject(error instanceof Error ? error : new Error("autocannon failed", { cause: error }));
          return;
        }
        resolve(unexpected + result.errors);
      },
    );
    instance.on("response", (_client, statusCode) => {
      if (statusCode !== route.status) unexpected += 1;
    });
  });
}

/**
 * BENCH_MEMORY=1: the routes in turns of MEMORY_BLOCK requests, RSS and heap (after a full
 * collection) after the first block and at every tenth of the run.
 */
async function runMemory(
  app: ServerProcess,
  routes: Route[],
  headers: Record<string, string>,
): Promise<void> {
  const mb = (bytes: number | undefined) => `${((bytes ?? 0) / 1024 / 1024).toFixed(1)} MB`;
  console.log(
    `memory run: ${memoryRequests.toLocaleString("en")} requests over ${routes.length} route(s) ` +
      `in blocks of ${MEMORY_BLOCK.toLocaleString("en")}, ${connections} connections`,
  );
  const started = performance.now();
  const readings: { requests: number; rssBytes: number }[] = [];
  const every = Math.max(
    MEMORY_BLOCK,
    Math.floor(memoryRequests / 10 / MEMORY_BLOCK) * MEMORY_BLOCK,
  );
  let unexpected = 0;
  for (let done = 0, block = 0; done < memoryRequests; block++) {
    const amount = Math.min(MEMORY_BLOCK, memoryRequests - done);
    unexpected += await loadAmount(app, routes[block % routes.length]!, headers, amount);
    done += amount;
    if (done === MEMORY_BLOCK || done % every === 0 || done === memoryRequests) {
      const usage = await app.usage(true);
      readings.push({ requests: done, rssBytes: usage.rssBytes });
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `  after ${done.toLocaleString("en").padStart(9)} requests: RSS ${mb(usage.rssBytes)}, ` +
          `heap used ${mb(usage.heapUsedBytes)} of ${mb(usage.heapTotalBytes)}, ` +
          `external ${mb(usage.externalBytes)} (${seconds.toFixed(0)} s)`,
      );
    }
  }
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  const growth = (100 * (last.rssBytes - first.rssBytes)) / first.rssBytes;
  console.log(
    `RSS after ${last.requests.toLocaleString("en")} vs after ${first.requests.toLocaleString("en")}: ` +
      `${growth >= 0 ? "+" : ""}${growth.toFixed(1)}% (target: no growth, at most +10%) -> ` +
      (growth <= 10 ? "MET" : "NOT MET"),
  );
  if (unexpected > 0) {
    console.error(`${unexpected} unexpected answers (errors or other statuses)`);
    process.exitCode = 1;
  }
}

/**
 * Statements each route sends, counted where every query of both servers passes: pg's
 * `Client.prototype.query` (Prisma's adapter and the baseline both use pg; BEGIN and COMMIT
 * included). Both apps run in this process for it, one request at a time.
 */
async function countStatements(
  routes: Route[],
  headers: Record<string, string>,
  pool: Pool,
): Promise<Map<string, { app: string[]; bare: string[] }>> {
  // The pg the bench uses, the database package's and its adapter's: one module when their
  // versions agree (pnpm links one copy), else each is patched.
  const fromDatabase = createRequire(path.join(databasePackageRoot, "package.json"));
  const fromAdapter = createRequire(fromDatabase.resolve("@prisma/adapter-pg"));
  const clients = new Set(
    [pg, fromDatabase("pg") as typeof pg, fromAdapter("pg") as typeof pg].map(
      (module) => module.Client.prototype,
    ),
  );
  let statements: string[] | null = null;
  type Query = (this: pg.Client, ...args: unknown[]) => unknown;
  const originals = new Map<pg.Client, Query>();
  for (const prototype of clients) {
    const original = Reflect.get(prototype, "query") as Query;
    originals.set(prototype, original);
    const counting: Query = function (...args) {
      const config = args[0] as string | { text?: string };
      statements?.push((typeof config === "string" ? config : (config.text ?? "")).trim());
      return original.apply(this, args);
    };
    Reflect.set(prototype, "query", counting);
  }
  const db = createPrismaClient(databaseUrl, { maxConnections: 2 });
  const config = loadConfig({
    NODE_ENV: "production",
    LOG_LEVEL: "silent",
    DATABASE_URL: databaseUrl,
    JOBS_ENABLED: "false",
  });
  const servers = await Promise.all(
    [createApp(buildContext({ config, db })), createBareApp(pool)].map(
      (app) =>
        new Promise<Server>((resolve) => {
          const server = app.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const [appUrl, bareUrl] = servers.map(
    (server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  );
  const counts = new Map<string, { app: string[]; bare: string[] }>();
  const record = async (url: string, route: Route): Promise<string[]> => {
    statements = [];
    const response = await fetch(`${url}${route.path()}`, {
      method: route.method,
      headers,
      body: route.body,
    });
    await response.arrayBuffer();
    const sent = statements;
    statements = null;
    return sent;
  };
  try {
    for (const route of routes) {
      // The first request fills the key caches (and records the key's use): not the steady state.
      await record(appUrl!, route);
      await record(bareUrl!, route);
      counts.set(route.name, {
        app: await record(appUrl!, route),
        bare: await record(bareUrl!, route),
      });
    }
  } finally {
    for (const [prototype, original] of originals) Reflect.set(prototype, "query", original);
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await db.$disconnect();
  }
  return counts;
}

/** One request per route to both servers: same status and same JSON (ids/times aside on writes). */
async function compareResponses(
  routes: Route[],
  headers: Record<string, string>,
  app: ServerProcess,
  bare: ServerProcess,
): Promise<string[]> {
  const problems: string[] = [];
  for (const route of routes) {
    const path = route.path();
    const [fromApp, fromBare] = await Promise.all(
      [app, bare].map(async (server) => {
        const response = await fetch(`${server.url}${path}`, {
          method: route.method,
          headers,
          body: route.body,
        });
        return { status: response.status, body: await response.json() };
      }),
    );
    const strip = (body: unknown) => {
      if (route.method === "GET" || typeof body !== "object" || body === null) return body;
      const { id: _id, createdAt: _c, updatedAt: _u, ...rest } = body as Record<string, unknown>;
      return rest;
    };
    if (fromApp!.status !== route.status || fromBare!.status !== route.status) {
      problems.push(`${route.name}: status app ${fromApp!.status}, bare ${fromBare!.status}`);
    } else if (!isDeepStrictEqual(strip(fromApp!.body), strip(fromBare!.body))) {
      problems.push(
        `${route.name}: bodies differ\n  app  ${JSON.stringify(fromApp!.body)}\n  bare ${JSON.stringify(fromBare!.body)}`,
      );
    }
  }
  return problems;
}

async function main(): Promise<void> {
  const started = performance.now();
  stopAfter("bench:api", timeoutSeconds);

  console.log(`preparing ${new URL(databaseUrl).pathname.slice(1)} ...`);
  await prepareTestDatabase(databaseUrl);
  const pool = new Pool({ connectionString: databaseUrl, max: 2 });
  const db = createPrismaClient(databaseUrl, { maxConnections: 2 });
  let app: ServerProcess | undefined;
  let bare: ServerProcess | undefined;
  const extras: Partial<Record<ServerKind, ServerProcess>> = {};
  try {
    // Earlier runs' organizations go (with their meetings and keys, by cascade).
    await pool.query("DELETE FROM organizations WHERE name LIKE $1", [`${ORG_NAME_PREFIX}%`]);
    // Business plan: unlimited meetings, so POST /meetings stays a write and never a 403.
    const organization = await createOrganization(db, {
      name: `${ORG_NAME_PREFIX}${new Date().toISOString()}`,
      planSlug: "business",
    });
    const { plainKey } = await createApiKey(
      { db },
      {
        organizationId: organization.id,
        name: "bench:api",
        scopes: ["meetings:read", "meetings:write"],
      },
    );
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform,
                             created_at, updated_at)
       SELECT $1::uuid, 'Meeting ' || i, 'https://zoom.us/j/' || (85000000000 + i),
              'zoom:' || (85000000000 + i), 'zoom', now() - i * interval '1 minute',
              now() - i * interval '1 minute'
         FROM generate_series(1, $2::int) AS i
       RETURNING id`,
      [organization.id, MEETINGS],
    );
    // What autovacuum does in production (it may be off on a test machine): earlier runs' rows,
    // deleted above, would otherwise stay in the tables and indexes both servers read and write.
    await pool.query("VACUUM ANALYZE");
    const meetingIds = rows.map((row) => row.id);
    let next = 0;
    const nextMeeting = () => meetingIds[next++ % meetingIds.length]!;
    const headers = {
      authorization: `Bearer ${plainKey}`,
      "content-type": "application/json",
    };
    const allRoutes: Route[] = [
      { key: "me", name: "GET /api/v1/me", method: "GET", path: () => "/api/v1/me", status: 200 },
      {
        key: "list",
        name: "GET /api/v1/meetings",
        method: "GET",
        path: () => "/api/v1/meetings",
        status: 200,
      },
      {
        key: "get",
        name: "GET /api/v1/meetings/:id",
        method: "GET",
        path: () => `/api/v1/meetings/${nextMeeting()}`,
        status: 200,
      },
      {
        key: "create",
        name: "POST /api/v1/meetings",
        method: "POST",
        path: () => "/api/v1/meetings",
        body: JSON.stringify({
          title: "Weekly sync",
          meetingUrl: "https://us02web.zoom.us/j/85012345678",
          startTime: "2030-01-07T15:00:00Z",
          endTime: "2030-01-07T16:00:00Z",
        }),
        status: 201,
      },
      {
        key: "update",
        name: "PATCH /api/v1/meetings/:id",
        method: "PATCH",
        path: () => `/api/v1/meetings/${nextMeeting()}`,
        body: JSON.stringify({ title: "Weekly sync (moved)" }),
        status: 200,
      },
    ];

    const routes = allRoutes.filter((route) => !selectedRoutes || selectedRoutes.has(route.key));
    const me = allRoutes.find((route) => route.key === "me")!;
    const create = allRoutes.find((route) => route.key === "create")!;
    const allPairs: Pair[] = [
      {
        key: "create-keyed",
        name: "POST /api/v1/meetings with Idempotency-Key / without",
        a: {
          server: "app",
          route: { ...create, headers: () => ({ "idempotency-key": randomUUID() }) },
        },
        b: { server: "app", route: create },
        target: 0.85,
      },
      {
        key: "me-limit",
        name: "GET /api/v1/me rate limit on (Redis) / off",
        a: { server: "app-redis", route: me },
        b: { server: "app-redis-unlimited", route: me },
        target: 0.9,
      },
      {
        key: "me-limit-memory",
        name: "GET /api/v1/me rate limit on (memory) / off",
        a: { server: "app", route: me },
        b: { server: "app-unlimited", route: me },
        target: 0.9,
      },
    ];
    const pairs = allPairs.filter((pair) => !selectedRoutes || selectedRoutes.has(pair.key));
    if (isMemoryRun) {
      app = await ServerProcess.start("app", serverSettings);
      await runMemory(app, routes, headers);
      return;
    }
    const benchTracing = async (): Promise<string[]> =>
      runTracingBench(
        {
          start: (kind, serverEnv) => ServerProcess.start(kind, serverSettings, serverEnv),
          stop: async (server) => {
            await server.request({ type: "close" }).catch(() => server.child.kill());
          },
          load: (server, seconds) => load(server, me, headers, seconds),
          serveEveryRoute: async (server) => {
            for (const route of allRoutes) await load(server, route, headers, warmupSeconds);
          },
          emptySample,
          mergeSample,
          stats: (sample) => {
            const sorted = [...sample.latencies].sort((a, b) => a - b);
            const wrong = [...sample.statuses].filter(([status]) => status !== me.status);
            if (sample.errors > 0 || wrong.length > 0) {
              throw new Error(`tracing bench: unexpected answers ${JSON.stringify(wrong)}`);
            }
            return {
              rps: requestsPerSecond(sample),
              p50: percentile(sorted, 50),
              p99: percentile(sorted, 99),
              cpuMicros: sample.cpuMicros / sample.latencies.length,
            };
          },
          formatTable,
          profile: async (server, seconds) => {
            if (profileSeconds <= 0) return null;
            const dir = await mkdtemp(path.join(tmpdir(), "zigznote-bench-tracing-"));
            const file = path.join(dir, `${server.kind}-${server.url.split(":").pop()}.cpuprofile`);
            await server.request({ type: "profile-start" });
            await load(server, me, headers, seconds);
            await server.request({ type: "profile-stop", file });
            return JSON.parse(await readFile(file, "utf8")) as CpuProfile;
          },
        },
        {
          rounds: tracingRounds,
          roundSeconds: tracingRoundSeconds,
          warmupSeconds: Math.max(2, warmupSeconds),
        },
      );
    if (tracingMode === "only") {
      const misses = await benchTracing();
      if (misses.length > 0) console.log(`tracing targets not met: ${misses.join(", ")}`);
      return;
    }
    const statements = await countStatements(routes, headers, pool);
    [app, bare] = await Promise.all([
      ServerProcess.start("app", serverSettings),
      ServerProcess.start("bare", serverSettings),
    ]);
    const needed = new Set(pairs.flatMap((pair) => [pair.a.server, pair.b.server]));
    const servers: Partial<Record<ServerKind, ServerProcess>> = { app, bare };
    for (const kind of ["app-unlimited", "app-redis", "app-redis-unlimited"] as const) {
      if (needed.has(kind))
        servers[kind] = extras[kind] = await ServerProcess.start(kind, serverSettings);
    }
    const problems = await compareResponses(routes, headers, app, bare);
    for (const problem of problems) console.error(`response mismatch: ${problem}`);

    console.log(
      `${connections} connections, pool ${poolSize} each, ${durationSeconds} s per route and ` +
        `server in ${ROUNDS} alternating rounds, after ${warmupSeconds} s of warm-up per route and server, ` +
        `${MEETINGS} meetings, NODE_ENV=production, logs silent, API key (cache on)`,
    );
    // Every route before any measurement: measured first, a route would still pay for the JIT
    // compiling the code all routes share (under load that takes seconds). The pairs' other
    // servers take the same routes: a pair's side served by `app` has run them all, and a server
    // that has only ever seen the pair's route runs it faster than one that has served the whole
    // API (GET /me: 490 against 617 us per response in one run), which would count against
    // whichever side is `app`.
    for (const route of routes) {
      for (const server of [bare, app, ...Object.values(extras)]) {
        await load(server, route, headers, warmupSeconds);
      }
    }
    const results = new Map<string, Record<"app" | "bare", Sample>>();
    for (const route of routes) {
      const samples = { app: emptySample(), bare: emptySample() };
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (["bare", "app"] as const) : (["app", "bare"] as const);
        for (const kind of order) {
          await load(servers[kind]!, route, headers, durationSeconds / ROUNDS, samples[kind]);
        }
      }
      results.set(route.name, samples);
      process.stdout.write(".");
    }
    // The pairs: each side warmed up, then alternating rounds like the routes above.
    const pairResults = new Map<string, { a: Sample; b: Sample; roundRatios: number[] }>();
    for (const pair of pairs) {
      const sides = [pair.a, pair.b] as const;
      for (const side of sides)
        await load(servers[side.server]!, side.route, headers, warmupSeconds);
      const samples = { a: emptySample(), b: emptySample() };
      const roundRatios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (["b", "a"] as const) : (["a", "b"] as const);
        const roundRps = { a: 0, b: 0 };
        for (const which of order) {
          const side = pair[which];
          const sample = await load(
            servers[side.server]!,
            side.route,
            headers,
            durationSeconds / ROUNDS,
          );
          roundRps[which] = requestsPerSecond(sample);
          mergeSample(samples[which], sample);
        }
        roundRatios.push(roundRps.a / roundRps.b);
      }
      pairResults.set(pair.name, { ...samples, roundRatios });
      process.stdout.write(".");
    }
    process.stdout.write("\n");

    // The app's profile, under the same load, after the measurements (the profiler costs a
    // little CPU: it must not weigh on the figures above).
    const profiles = new Map<string, CpuProfile>();
    const profiledRequests = new Map<string, number>();
    const profileDir = await mkdtemp(path.join(tmpdir(), "zigznote-bench-api-"));
    // The routes, then each pair's side with the feature on when it is the app's default server
    // (the keyed create): where its extra time goes.
    const profiledRoutes = [
      ...routes,
      ...pairs
        .filter((pair) => pair.a.server === "app" && pair.a.route !== pair.b.route)
        .map((pair) => ({ ...pair.a.route, name: `${pair.a.route.name} [${pair.key}]` })),
    ];
    if (profileSeconds > 0) {
      for (const [index, route] of profiledRoutes.entries()) {
        const slug = route.name.replace("/api/v1/", "").replace(/[^A-Za-z]+/g, "-");
        const file = path.join(profileDir, `${index + 1}-${slug.toLowerCase()}.cpuprofile`);
        await app.request({ type: "profile-start" });
        const sample = await load(app, route, headers, profileSeconds);
        await app.request({ type: "profile-stop", file });
        profiles.set(route.name, JSON.parse(await readFile(file, "utf8")) as CpuProfile);
        profiledRequests.set(route.name, sample.latencies.length);
      }
    }
    const rss = await Promise.all(
      [app, bare].map(async (server) => (await server.usage()).rssBytes / 1024 / 1024),
    );

    // Results.
    const header = [
      "route",
      "app req/s",
      "bare req/s",
      "ratio",
      "app p50",
      "bare p50",
      "app p99",
      "bare p99",
      "p99 x",
      "app CPU/req",
      "bare CPU/req",
      "CPU x",
      "SQL app/bare",
    ];
    const table = [header];
    const misses: string[] = [];
    let unexpected = 0;
    for (const route of routes) {
      const samples = results.get(route.name)!;
      const stats = (sample: Sample) => {
        const sorted = [...sample.latencies].sort((a, b) => a - b);
        const wrong = [...sample.statuses].filter(([status]) => status !== route.status);
        unexpected += sample.errors + wrong.reduce((sum, [, count]) => sum + count, 0);
        for (const [status, count] of wrong) {
          console.error(`${route.name}: ${count} responses with status ${status}`);
        }
        return {
          rps: requestsPerSecond(sample),
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          cpuMicros: sample.cpuMicros / sample.latencies.length,
        };
      };
      const a = stats(samples.app);
      const b = stats(samples.bare);
      const ratio = a.rps / b.rps;
      const p99Factor = a.p99 / b.p99;
      if (ratio < 0.6 || p99Factor > 2) misses.push(route.name);
      const counted = statements.get(route.name);
      table.push([
        route.name,
        a.rps.toFixed(0),
        b.rps.toFixed(0),
        ratio.toFixed(2),
        `${a.p50.toFixed(1)} ms`,
        `${b.p50.toFixed(1)} ms`,
        `${a.p99.toFixed(1)} ms`,
        `${b.p99.toFixed(1)} ms`,
        p99Factor.toFixed(1),
        `${a.cpuMicros.toFixed(0)} us`,
        `${b.cpuMicros.toFixed(0)} us`,
        (a.cpuMicros / b.cpuMicros).toFixed(1),
        counted ? `${counted.app.length}/${counted.bare.length}` : "-",
      ]);
    }
    console.log(`\n${formatTable(table)}`);
    console.log(
      `ratio = app req/s / bare req/s (target >= 0.6); p99 x = app p99 / bare p99 (target <= 2): ` +
        (misses.length === 0 ? "MET on every route" : `BELOW TARGET on ${misses.join(", ")}`),
    );
    console.log(
      "CPU/req = CPU time (user + system) of the server process per response: less sensitive " +
        "than req/s to other load on the machine; CPU x = app / bare",
    );
    console.log(`RSS after the run: app ${rss[0]!.toFixed(0)} MB, bare ${rss[1]!.toFixed(0)} MB`);
    if (pairs.length > 0) {
      const pairTable = [
        [
          "on / off",
          "on req/s",
          "off req/s",
          "ratio",
          "rounds",
          "target",
          "on p99",
          "off p99",
          "on CPU/req",
          "off CPU/req",
          "on DB CPU/req",
          "off DB CPU/req",
          "on Redis CPU/req",
          "off Redis CPU/req",
        ],
      ];
      const pairMisses: string[] = [];
      for (const pair of pairs) {
        const samples = pairResults.get(pair.name)!;
        const stats = (sample: Sample, route: Route) => {
          const sorted = [...sample.latencies].sort((x, y) => x - y);
          const wrong = [...sample.statuses].filter(([status]) => status !== route.status);
          unexpected += sample.errors + wrong.reduce((sum, [, count]) => sum + count, 0);
          for (const [status, count] of wrong) {
            console.error(`${pair.name}: ${count} responses with status ${status}`);
          }
          return {
            rps: requestsPerSecond(sample),
            p99: percentile(sorted, 99),
            cpuMicros: sample.cpuMicros / sample.latencies.length,
            databaseCpuMicros: sample.databaseCpuMicros / sample.latencies.length,
            redisCpuMicros: sample.redisCpuMicros / sample.latencies.length,
          };
        };
        const on = stats(samples.a, pair.a.route);
        const off = stats(samples.b, pair.b.route);
        const ratio = on.rps / off.rps;
        if (ratio < pair.target) pairMisses.push(pair.name);
        pairTable.push([
          pair.name,
          on.rps.toFixed(0),
          off.rps.toFixed(0),
          ratio.toFixed(2),
          roundSpread(samples.roundRatios),
          `>= ${pair.target}`,
          `${on.p99.toFixed(1)} ms`,
          `${off.p99.toFixed(1)} ms`,
          `${on.cpuMicros.toFixed(0)} us`,
          `${off.cpuMicros.toFixed(0)} us`,
          `${on.databaseCpuMicros.toFixed(0)} us`,
          `${off.databaseCpuMicros.toFixed(0)} us`,
          `${on.redisCpuMicros.toFixed(0)} us`,
          `${off.redisCpuMicros.toFixed(0)} us`,
        ]);
      }
      console.log(`\n${formatTable(pairTable)}`);
      console.log(
        "DB CPU/req, Redis CPU/req = CPU time of the PostgreSQL server's processes and of the " +
          "Redis server per response (Linux; every client of those servers counts: run the " +
          "bench alone); rounds = the ratio of each " +
          "round alone, lowest-highest: a target inside that range is within this run's noise",
      );
      console.log(
        "on / off: the same route with the feature on and off, in the same alternating rounds: " +
          (pairMisses.length === 0
            ? "MET on every pair"
            : `BELOW TARGET on ${pairMisses.join(", ")}`),
      );
    }
    if (isSqlShown) {
      for (const [name, counted] of statements) {
        console.log(`\n${name}: the app's statements`);
        for (const statement of counted.app) console.log(`  ${statement.replace(/\s+/g, " ")}`);
      }
    }

    if (profiles.size > 0) {
      const all = selfTime([...profiles.values()]);
      const seconds = [...profiles.values()].reduce(
        (sum, profile) => sum + (profile.endTime - profile.startTime) / 1e6,
        0,
      );
      console.log(
        `\nCPU profile of the app: ${profileSeconds} s per route under the same load, ` +
          `${all.busy + all.idle} samples in ${seconds.toFixed(1)} s, ` +
          `busy ${((100 * all.busy) / (all.busy + all.idle)).toFixed(0)}% (shares below are of busy time)`,
      );
      console.log("top frames by self time, all routes:");
      for (const [frame, share] of topShares(all, 15)) {
        console.log(`  ${share.toFixed(1).padStart(5)}%  ${frame}`);
      }
      const byPackage = new Map(
        [...profiles].map(([name, profile]) => [name, selfTime([profile], packageOf)]),
      );
      const allByPackage = selfTime([...profiles.values()], packageOf);
      const packages = topShares(allByPackage, 12);
      const shareIn = (time: ReturnType<typeof selfTime>, name: string) =>
        time.busy === 0 ? 0 : (100 * (time.counts.get(name) ?? 0)) / time.busy;
      const columns = profiledRoutes.map((route) => route.name.replace("/api/v1", ""));
      const packageTable = [["self time by package (%)", ...columns, "all"]];
      for (const [name, share] of packages) {
        packageTable.push([
          name,
          ...profiledRoutes.map((route) => shareIn(byPackage.get(route.name)!, name).toFixed(1)),
          share.toFixed(1),
        ]);
      }
      // The busy time per request under the profiler: what the shares above are shares of.
      packageTable.push([
        "busy time per request (us)",
        ...profiledRoutes.map((route) => {
          const profile = profiles.get(route.name)!;
          const time = selfTime([profile]);
          const sampleMicros =
            (profile.endTime - profile.startTime) / Math.max(1, time.busy + time.idle);
          return ((time.busy * sampleMicros) / (profiledRequests.get(route.name) ?? 1)).toFixed(0);
        }),
        "",
      ]);
      console.log(`\n${formatTable(packageTable)}`);
      console.log(`profiles: ${profileDir}`);
    }
    if (tracingMode !== "0") {
      const misses = await benchTracing();
      if (misses.length > 0) console.log(`tracing targets not met: ${misses.join(", ")}`);
    }
    console.log(`\nbench:api took ${((performance.now() - started) / 1000).toFixed(0)} s`);
    if (problems.length > 0 || unexpected > 0) process.exitCode = 1;
  } finally {
    await Promise.all(
      [app, bare, ...Object.values(extras)]
        .filter((server) => server !== undefined)
        .map((server) => server.request({ type: "close" }).catch(() => server.child.kill())),
    );
    await pool.end();
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
});
