/**
 * pnpm bench:bots: `POST /api/v1/meetings/:id/bot` through the real app (API key auth, the
 * reservation, the Recall call, the record step) against the local fake Recall, at a fixed
 * concurrency, where a share of the requests are duplicate attempts (a meeting that already has
 * an active bot: they must get 409). Two phases over the same route:
 *   1. baseline: the fake Recall answers instantly (what our side costs);
 *   2. Recall answering after a realistic latency (what callers see).
 * Prints requests/s, p50 and p99 per phase, their ratio, and checks that no meeting has more than
 * one active bot and that the fake created exactly as many bots as there were 201s.
 * Not a test: figures depend on the machine.
 *
 * Env: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/zigznote_bench_bots),
 * BENCH_DURATION_MS (10000 per phase), BENCH_CONCURRENCY (16), BENCH_DUPLICATE_RATE (0.2),
 * BENCH_RECALL_LATENCY_MS (150), BENCH_POOL_SIZE (10).
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { createOrganization, prepareTestDatabase } from "@zigznote/database/testing";
import { createApp } from "../src/app";
import { buildContext } from "../src/context";
import { createApiKey } from "../src/identity";
import { TERMINAL_BOT_STATUSES } from "../src/bots";
import { startFakeRecall, type FakeRecall } from "../test/support/fakes/recallServer";
import { percentile } from "./report";
import { loadBenchConfig } from "./benchConfig";

const env = process.env;
const databaseUrl =
  env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_bench_bots";
const durationMs = Number(env.BENCH_DURATION_MS ?? 10_000);
const concurrency = Number(env.BENCH_CONCURRENCY ?? 16);
const duplicateRate = Number(env.BENCH_DUPLICATE_RATE ?? 0.2);
const recallLatencyMs = Number(env.BENCH_RECALL_LATENCY_MS ?? 150);
const poolSize = Number(env.BENCH_POOL_SIZE ?? 10);

interface Phase {
  name: string;
  organizationId: string;
  latencies: number[];
  created: number;
  duplicateAttempts: number;
  duplicateRefused: number;
  unexpected: Record<string, number>;
  elapsedSeconds: number;
}

let meetingNumber = 10_000_000_000 + Math.floor(Math.random() * 1_000_000_000);

async function newMeeting(db: PrismaClient, organizationId: string): Promise<string> {
  meetingNumber += 1;
  const meeting = await db.meeting.create({
    data: {
      organizationId,
      title: "bench",
      meetingUrl: `https://zoom.us/j/${meetingNumber}`,
      normalizedMeetingUrl: `zoom:${meetingNumber}`,
      platform: "zoom",
    },
    select: { id: true },
  });
  return meeting.id;
}

async function runPhase(
  phase: Phase,
  db: PrismaClient,
  url: string,
  authorization: string,
  ms: number,
): Promise<void> {
  const withBot: string[] = [];
  const deadline = performance.now() + ms;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const isDuplicate = withBot.length > 0 && Math.random() < duplicateRate;
      // Fresh meetings are made outside the timed request.
      const meetingId = isDuplicate
        ? withBot[Math.floor(Math.random() * withBot.length)]!
        : await newMeeting(db, phase.organizationId);
      const t0 = performance.now();
      const response = await fetch(`${url}/api/v1/meetings/${meetingId}/bot`, {
        method: "POST",
        headers: { Authorization: authorization },
      });
      await response.arrayBuffer();
      phase.latencies.push(performance.now() - t0);
      if (isDuplicate) phase.duplicateAttempts += 1;
      if (response.status === 201) {
        phase.created += 1;
        withBot.push(meetingId);
      } else if (response.status === 409 && isDuplicate) {
        phase.duplicateRefused += 1;
      } else {
        const key = `${isDuplicate ? "duplicate" : "fresh"} ${response.status}`;
        phase.unexpected[key] = (phase.unexpected[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  phase.elapsedSeconds = (performance.now() - started) / 1000;
}

async function main(): Promise<void> {
  console.log(`preparing ${new URL(databaseUrl).pathname.slice(1)} ...`);
  await prepareTestDatabase(databaseUrl);
  const recall: FakeRecall = await startFakeRecall();
  const config = loadBenchConfig(databaseUrl, {
    DATABASE_POOL_SIZE: String(poolSize),
    JOBS_ENABLED: "false",
    RECALL_API_BASE_URL: recall.baseUrl,
    RECALL_API_KEY: recall.apiKey,
  });
  const db = createPrismaClient(databaseUrl, { maxConnections: poolSize });
  const app = createApp(buildContext({ config, db }));
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const newPhase = async (name: string): Promise<{ phase: Phase; authorization: string }> => {
    // Unlimited plan: thousands of meetings must not trip the free plan's monthly limit.
    const organization = await createOrganization(db, { planSlug: "business" });
    const { plainKey } = await createApiKey(
      { db },
      {
        organizationId: organization.id,
        name: "bench",
        scopes: ["bots:write"],
        expiresAt: null,
      },
    );
    return {
      authorization: `Bearer ${plainKey}`,
      phase: {
        name,
        organizationId: organization.id,
        latencies: [],
        created: 0,
        duplicateAttempts: 0,
        duplicateRefused: 0,
        unexpected: {},
        elapsedSeconds: 0,
      },
    };
  };

  try {
    console.log(
      `concurrency ${concurrency}, ${Math.round(duplicateRate * 100)}% duplicate attempts, ` +
        `${durationMs} ms per phase, pool ${poolSize}`,
    );
    // Warm connections, JIT and the key cache before measuring.
    const warm = await newPhase("warm-up");
    await runPhase(warm.phase, db, url, warm.authorization, 1000);

    const instant = await newPhase("baseline: Recall answers instantly");
    recall.reset();
    await runPhase(instant.phase, db, url, instant.authorization, durationMs);
    const instantCreates = recall.createdBots().length;

    const slow = await newPhase(`Recall answers in ${recallLatencyMs} ms`);
    recall.reset();
    recall.setLatency(recallLatencyMs);
    await runPhase(slow.phase, db, url, slow.authorization, durationMs);
    const slowCreates = recall.createdBots().length;

    const phases = [
      { phase: instant.phase, recallCreates: instantCreates },
      { phase: slow.phase, recallCreates: slowCreates },
    ];
    const summaries = phases.map(({ phase }) => {
      const sorted = [...phase.latencies].sort((a, b) => a - b);
      return {
        requestsPerSecond: phase.latencies.length / phase.elapsedSeconds,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      };
    });
    console.table(
      phases.map(({ phase, recallCreates }, index) => ({
        phase: phase.name,
        "req/s": Math.round(summaries[index]!.requestsPerSecond),
        "p50 ms": Number(summaries[index]!.p50.toFixed(2)),
        "p99 ms": Number(summaries[index]!.p99.toFixed(2)),
        requests: phase.latencies.length,
        created: phase.created,
        "dup 409": `${phase.duplicateRefused}/${phase.duplicateAttempts}`,
        "recall creates": recallCreates,
        unexpected: JSON.stringify(phase.unexpected),
      })),
    );

    const terminal = TERMINAL_BOT_STATUSES as string[];
    let isOk = true;
    for (const { phase, recallCreates } of phases) {
      const doubled = await db.$queryRaw<{ meeting_id: string; active: bigint }[]>`
        SELECT meeting_id::text, count(*) AS active FROM bots
        WHERE organization_id = ${phase.organizationId}::uuid
          AND NOT (status::text = ANY(${terminal}::text[]))
        GROUP BY meeting_id HAVING count(*) > 1`;
      const activeRows = await db.$queryRaw<{ count: bigint }[]>`
        SELECT count(*) FROM bots WHERE organization_id = ${phase.organizationId}::uuid
          AND NOT (status::text = ANY(${terminal}::text[]))`;
      const active = Number(activeRows[0]?.count ?? 0n);
      const phaseOk =
        doubled.length === 0 &&
        recallCreates === phase.created &&
        active === phase.created &&
        phase.duplicateRefused === phase.duplicateAttempts &&
        Object.keys(phase.unexpected).length === 0;
      console.log(
        `${phase.name}: meetings with >1 active bot: ${doubled.length}; active bots ${active}, ` +
          `201s ${phase.created}, Recall creates ${recallCreates}; duplicates refused ` +
          `${phase.duplicateRefused}/${phase.duplicateAttempts} -> ${phaseOk ? "OK" : "MISMATCH"}`,
      );
      isOk &&= phaseOk;
    }
    const ratio = summaries[1]!.requestsPerSecond / summaries[0]!.requestsPerSecond;
    console.log(
      `throughput ratio (Recall at ${recallLatencyMs} ms / instant Recall): ${(ratio * 100).toFixed(1)}%; ` +
        `p50 added by Recall's latency: ${(summaries[1]!.p50 - summaries[0]!.p50).toFixed(1)} ms`,
    );
    if (!isOk) process.exitCode = 1;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await recall.close();
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
