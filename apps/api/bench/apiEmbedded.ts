/**
 * `pnpm bench:api` (after bench/api.ts), or `pnpm bench:embedded` alone: what the embedded
 * database's session server costs, against what the API had before, in one run.
 *
 * Three servers (bench/apiEmbeddedServer.ts, each in its own process with PGlite inside, as
 * `pnpm start` runs it), each on its own copy of one migrated and seeded PGlite folder:
 *   before          pglite-socket 0.2 in front of PGlite, the app's pool of 10 connections
 *   one-connection  the same, the pool cut to one connection (the other way to be correct)
 *   after           the session server (packages/database/src/embeddedServer.ts), pool of 10
 *
 * Two loads, API key on every request:
 *   c=1   one connection, GET /api/v1/meetings/:id: no two statements are ever in flight, so
 *         `before` is correct here; after/before is the cost of the fix
 *   c=10  ten connections cycling GET /me, GET /meetings/:id, PATCH /meetings/:id (a new link, in a transaction), POST /meetings: what the
 *         API's own concurrency does to each (non-2xx answers and timeouts are counted; the
 *         `before` server is expected to fail or stop answering)
 * c=1 runs in alternating rounds over the three servers, so that load from elsewhere on the
 * machine weighs on all alike; c=10 runs last, `before` at the very end (it may wedge).
 *
 * Env: BENCH_EMBEDDED_SECONDS (5 per load and server, c=1 in 2 rounds), BENCH_TIMEOUT_SECONDS (600).
 */
import { fork, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import {
  createPrismaClient,
  runMigrations,
  seedPlans,
  startEmbeddedPostgres,
} from "@zigznote/database";
import { createOrganization } from "@zigznote/database/testing";
import { createApiKey } from "../src/identity";
import type { EmbeddedChildMessage, EmbeddedVariant } from "./apiEmbeddedServer";
import { requestsPerSecond } from "./load";
import { formatTable, percentile } from "./report";

const seconds = Number(process.env.BENCH_EMBEDDED_SECONDS ?? 5);
const timeoutSeconds = Number(process.env.BENCH_TIMEOUT_SECONDS ?? 600);
const ROUNDS = 2;
const concurrency = Number(process.env.BENCH_EMBEDDED_CONNECTIONS ?? 10);
const MEETINGS = 200;
const VARIANTS: { variant: EmbeddedVariant; label: string }[] = [
  { variant: "before", label: "before: pglite-socket, pool 10" },
  { variant: "one-connection", label: "one connection: pglite-socket, pool 1" },
  { variant: "after", label: "after: session server, pool 10" },
];

interface Result {
  latencies: number[];
  seconds: number;
  non2xx: number;
  errors: number;
}

const emptyResult = (): Result => ({ latencies: [], seconds: 0, non2xx: 0, errors: 0 });

/** A migrated, seeded PGlite folder with one organization, its API key and its meetings. */
async function prepareTemplate(dir: string): Promise<{ key: string; meetingIds: string[] }> {
  const embedded = await startEmbeddedPostgres({ dataDir: dir });
  const db = createPrismaClient(embedded.url, { maxConnections: 2 });
  try {
    await runMigrations(embedded.url);
    await seedPlans(db);
    const organization = await createOrganization(db, {
      name: "bench:embedded",
      planSlug: "business",
    });
    const { plainKey } = await createApiKey(
      { db },
      {
        organizationId: organization.id,
        name: "bench",
        scopes: ["meetings:read", "meetings:write"],
      },
    );
    const rows = await db.$queryRaw<{ id: string }[]>`
      INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform)
      SELECT ${organization.id}::uuid, 'Meeting ' || i, 'https://zoom.us/j/' || (85000000000 + i),
             'zoom:' || (85000000000 + i), 'zoom'
        FROM generate_series(1, ${MEETINGS}::int) AS i
      RETURNING id`;
    return { key: plainKey, meetingIds: rows.map((row) => row.id) };
  } finally {
    await db.$disconnect();
    await embedded.stop();
  }
}

const children = new Set<ChildProcess>();

function startChild(variant: EmbeddedVariant, dataDir: string): Promise<{ url: string }> {
  const child = fork(path.join(__dirname, "apiEmbeddedServer.ts"), [variant, dataDir], {
    cwd: path.resolve(__dirname, ".."),
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${variant} server exited (${code})`)));
    child.once("message", (message: EmbeddedChildMessage) => {
      if (message.type === "ready") resolve({ url: `http://127.0.0.1:${message.port}` });
      else reject(new Error(`${variant} server: ${message.message}`));
    });
  });
}

function load(
  url: string,
  connections: number,
  requests: autocannon.Request[],
  into: Result,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { url, connections, duration: seconds, timeout: 10, requests },
      (error: unknown, result) => {
        if (error) {
          reject(error instanceof Error ? error : new Error("autocannon failed", { cause: error }));
          return;
        }
        into.seconds += result.duration;
        into.errors += result.errors + result.timeouts;
        resolve();
      },
    );
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      into.latencies.push(responseTime);
      if (statusCode < 200 || statusCode > 299) into.non2xx += 1;
    });
  });
}

function describe(result: Result): string[] {
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return [
    requestsPerSecond(result).toFixed(0),
    percentile(sorted, 50).toFixed(1),
    percentile(sorted, 99).toFixed(1),
    String(result.non2xx),
    String(result.errors),
  ];
}

async function main(): Promise<void> {
  const guard = setTimeout(() => {
    console.error(`bench:embedded: stopped after ${timeoutSeconds} s`);
    for (const child of children) child.kill("SIGKILL");
    process.exit(1);
  }, timeoutSeconds * 1000);
  guard.unref();

  const root = mkdtempSync(path.join(tmpdir(), "zigznote-bench-embedded-"));
  try {
    console.log("\nembedded database (PGlite): preparing one migrated folder ...");
    const template = path.join(root, "template");
    const { key, meetingIds } = await prepareTemplate(template);
    const servers = new Map<EmbeddedVariant, string>();
    for (const { variant } of VARIANTS) {
      const dataDir = path.join(root, variant);
      cpSync(template, dataDir, { recursive: true });
      servers.set(variant, (await startChild(variant, dataDir)).url);
    }

    let next = 0;
    const meetingPath = () => `/api/v1/meetings/${meetingIds[next++ % meetingIds.length]}`;
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const single: autocannon.Request[] = [
      { method: "GET", headers, setupRequest: (request) => ({ ...request, path: meetingPath() }) },
    ];
    const mix: autocannon.Request[] = [
      { method: "GET", path: "/api/v1/me", headers },
      ...single,
      {
        // A new link: checked against the meeting's bots in a transaction.
        method: "PATCH",
        headers,
        setupRequest: (request) => ({
          ...request,
          path: meetingPath(),
          body: JSON.stringify({ meetingUrl: `https://zoom.us/j/${8_600_000_000 + next}` }),
        }),
      },
      {
        method: "POST",
        path: "/api/v1/meetings",
        headers,
        body: JSON.stringify({ title: "Standup", meetingUrl: "https://zoom.us/j/9876543210" }),
      },
    ];

    const sequential = new Map(VARIANTS.map(({ variant }) => [variant, emptyResult()]));
    const concurrent = new Map(VARIANTS.map(({ variant }) => [variant, emptyResult()]));
    for (const { variant } of VARIANTS) {
      await load(servers.get(variant)!, 1, single, emptyResult()); // warm-up
    }
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const { variant } of VARIANTS) {
        await load(servers.get(variant)!, 1, single, sequential.get(variant)!);
      }
    }
    for (const variant of ["after", "one-connection", "before"] as const) {
      await load(servers.get(variant)!, concurrency, mix, concurrent.get(variant)!);
    }

    console.log(
      `embedded database, ${MEETINGS} meetings, API key; ${seconds} s per load (c=1 over ${ROUNDS} rounds):`,
    );
    console.log(
      formatTable([
        [
          "server",
          "c=1 req/s",
          "p50 ms",
          "p99 ms",
          "non-2xx",
          "errors",
          "c=10 req/s",
          "p50 ms",
          "p99 ms",
          "non-2xx",
          "errors",
        ],
        ...VARIANTS.map(({ variant, label }) => [
          label,
          ...describe(sequential.get(variant)!),
          ...describe(concurrent.get(variant)!),
        ]),
      ]),
    );
    const costOfFix =
      requestsPerSecond(sequential.get("after")!) / requestsPerSecond(sequential.get("before")!);
    const againstOne =
      requestsPerSecond(concurrent.get("after")!) /
      requestsPerSecond(concurrent.get("one-connection")!);
    const failures = (result: Result) => result.non2xx + result.errors;
    console.log(
      `after/before at c=1 (the cost of the fix): ${costOfFix.toFixed(2)}x (target >= 0.9)\n` +
        `after/one-connection at c=10: ${againstOne.toFixed(2)}x\n` +
        `failed requests at c=10: before ${failures(concurrent.get("before")!)}, ` +
        `one connection ${failures(concurrent.get("one-connection")!)}, after ${failures(concurrent.get("after")!)} (target: 0 after)`,
    );
    if (failures(concurrent.get("after")!) > 0 || failures(sequential.get("after")!) > 0)
      process.exitCode = 1;
  } finally {
    for (const child of children) child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    console.error(error);
    for (const child of children) child.kill("SIGKILL");
    process.exit(1);
  },
);
