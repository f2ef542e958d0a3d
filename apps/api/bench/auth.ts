/**
 * `pnpm bench:auth`: what API key authentication costs, measured in one run.
 *
 *  1. GET /api/v1/me with an API key vs the same route with authentication bypassed (a stub
 *     sets req.auth): requests/s, p99 and their ratio (target >= 0.8).
 *  2. Throughput of rejected attempts while a (client IP, key id) pair is locked out.
 *  3. Heap growth of the in-memory lockout store after 100,000 distinct attacker IPs, and after
 *     twice that (the LRU bound must hold it flat; target < 100 MB).
 *
 * Needs PostgreSQL at BENCH_DATABASE_URL (default TEST_DATABASE_URL, then the test default).
 * BENCH_DURATION_SECONDS (default 5 per measured run) and BENCH_CONNECTIONS (default 10).
 * Run with --expose-gc (the package script does) so heap figures are after a full collection.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import autocannon from "autocannon";
import { createPrismaClient } from "@zigznote/database";
import {
  createOrganization,
  DEFAULT_TEST_DATABASE_URL,
  prepareTestDatabase,
} from "@zigznote/database/testing";
import type { RequestHandler } from "express";
import { createApp } from "../src/app";
import { buildContext, type AppContext } from "../src/context";
import { createApiKeyLockout } from "../src/identity";
import { createApiKey, formatApiKey } from "../src/identity/apiKeyService";
import { loadBenchConfig } from "./benchConfig";

const databaseUrl =
  process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;
const duration = Number(process.env.BENCH_DURATION_SECONDS ?? 5);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 10);

async function listen(app: ReturnType<typeof createApp>): Promise<{ server: Server; url: string }> {
  return new Promise((resolve) => {
    const server = app.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/api/v1/me` });
    });
  });
}

async function load(url: string, headers: Record<string, string>, seconds = duration) {
  const result = await autocannon({ url, headers, connections, duration: seconds });
  return {
    rps: Math.round(result.requests.average),
    p99: result.latency.p99,
    total: result.requests.total,
    statuses: Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, stat]) => [code, stat.count]),
    ),
  };
}

function heapMb(): number {
  global.gc?.();
  global.gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

async function main(): Promise<void> {
  await prepareTestDatabase(databaseUrl);
  const config = loadBenchConfig(databaseUrl);
  const db = createPrismaClient(databaseUrl, { maxConnections: 10 });
  const ctx: AppContext = buildContext({ config, db });
  const organization = await createOrganization(db);
  const { apiKey, plainKey } = await createApiKey(
    { db },
    {
      organizationId: organization.id,
      name: "bench",
      scopes: ["meetings:read"],
    },
  );
  const bypass: RequestHandler = (req, _res, next) => {
    req.auth = {
      kind: "apiKey",
      organizationId: organization.id,
      userId: null,
      apiKeyId: apiKey.id,
      role: null,
      scopes: ["meetings:read"],
      planSlug: organization.planSlug,
    };
    next();
  };
  const withAuth = await listen(createApp(ctx));
  const withoutAuth = await listen(createApp(ctx, { authenticate: bypass }));
  const headers = { authorization: `Bearer ${plainKey}` };

  try {
    console.log(`auth bench: ${connections} connections, ${duration} s per run, loopback`);
    await load(withoutAuth.url, headers, 1); // warm-up (JIT, pool, query plans)
    await load(withAuth.url, headers, 1);
    const base = await load(withoutAuth.url, headers);
    const authed = await load(withAuth.url, headers);
    console.log("\n1. GET /api/v1/me");
    console.log(`   auth bypassed : ${base.rps} req/s, p99 ${base.p99} ms`, base.statuses);
    console.log(`   with API key  : ${authed.rps} req/s, p99 ${authed.p99} ms`, authed.statuses);
    console.log(`   ratio (target >= 0.8): ${(authed.rps / base.rps).toFixed(2)}`);

    // Lock the pair (loopback, this key's id) with wrong secrets, then hammer it.
    const wrong = `Bearer ${formatApiKey(apiKey.prefix, "0".repeat(32))}`;
    for (let i = 0; i < config.API_KEY_MAX_FAILURES; i++) {
      await fetch(withAuth.url, { headers: { authorization: wrong } });
    }
    const locked = await load(withAuth.url, headers, Math.max(2, Math.round(duration / 2)));
    console.log("\n2. During a lockout (right key, locked pair)");
    console.log(`   ${locked.rps} rejected req/s, p99 ${locked.p99} ms`, locked.statuses);
  } finally {
    await new Promise((resolve) => withAuth.server.close(resolve));
    await new Promise((resolve) => withoutAuth.server.close(resolve));
    await db.$disconnect();
  }

  console.log("\n3. In-memory lockout store under distinct attacker IPs");
  const lockout = createApiKeyLockout({ config, redis: null });
  const stores = lockout.memoryStores();
  const before = heapMb();
  const attack = async (from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      await lockout.recordFailure(ip, `k${i.toString(36).padStart(11, "0")}`);
    }
  };
  const started = performance.now();
  await attack(0, 100_000);
  const seconds = (performance.now() - started) / 1000;
  const after100k = heapMb();
  await attack(100_000, 100_000);
  const after200k = heapMb();
  const sizes = () => stores.map((store) => store.size).join(" + ");
  console.log(`   cap: ${config.API_KEY_LOCKOUT_MAX_ENTRIES} entries per counter (pair, IP)`);
  console.log(
    `   100,000 IPs: +${(after100k - before).toFixed(1)} MB heap (target < 100 MB), ` +
      `${Math.round(100_000 / seconds)} failures recorded/s, entries ${sizes()}`,
  );
  console.log(`   200,000 IPs: +${(after200k - before).toFixed(1)} MB heap, entries ${sizes()}`);
  if (!global.gc) console.log("   (run with node --expose-gc for post-GC heap figures)");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
