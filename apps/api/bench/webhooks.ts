/**
 * pnpm bench:webhooks: signed Clerk user.created deliveries at a fixed concurrency with a share of
 * redeliveries, against (1) the real /webhooks/clerk route (claim + handler atomically through
 * Prisma: user.created is a single-statement handler, claim and upsert in one statement) and
 * (2) a baseline Express route that verifies the same Svix signature and runs one
 * INSERT ... ON CONFLICT DO NOTHING through pg. Prints events/s, p50, p99, the effect check and
 * the throughput ratio. Not a test: figures depend on the machine.
 *
 * Env: BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/zigznote_bench),
 * BENCH_DURATION_MS (10000 per phase), BENCH_CONCURRENCY (32), BENCH_DUPLICATE_RATE (0.3),
 * BENCH_POOL_SIZE (10 connections for both), BENCH_NOOP_HANDLER=1 (replace the Clerk handler by a
 * no-op: measures the framework alone, claim transaction included; the effect check then only
 * counts records).
 */
import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createPrismaClient } from "@zigznote/database";
import { prepareTestDatabase } from "@zigznote/database/testing";
import express from "express";
import { Pool } from "pg";
import { Webhook } from "svix";
import { createApp } from "../src/app";
import { buildContext } from "../src/context";
import { percentile } from "./report";
import { loadBenchConfig } from "./benchConfig";

const env = process.env;
const databaseUrl = env.BENCH_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_bench";
const durationMs = Number(env.BENCH_DURATION_MS ?? 10_000);
const concurrency = Number(env.BENCH_CONCURRENCY ?? 32);
const duplicateRate = Number(env.BENCH_DUPLICATE_RATE ?? 0.3);
const poolSize = Number(env.BENCH_POOL_SIZE ?? 10);
const isNoopHandler = env.BENCH_NOOP_HANDLER === "1";
const secret = `whsec_${randomBytes(24).toString("base64")}`;
const signer = new Webhook(secret);

interface Event {
  msgId: string;
  body: string;
}

/** One target's deliveries over all its rounds. */
interface PhaseResult {
  name: string;
  runId: string;
  sent: Event[];
  latencies: number[];
  failures: number;
  /** Non-200 answers by status and error code. */
  failureAnswers: Map<string, number>;
  elapsedSeconds: number;
}

function newEvent(runId: string, index: number): Event {
  const clerkId = `user_bench_${runId}_${index}`;
  const at = Date.now();
  const body = JSON.stringify({
    data: {
      id: clerkId,
      object: "user",
      first_name: "Bench",
      last_name: String(index),
      image_url: null,
      primary_email_address_id: `idn_${index}`,
      email_addresses: [
        { id: `idn_${index}`, object: "email_address", email_address: `${clerkId}@bench.test` },
      ],
      created_at: at,
      updated_at: at,
    },
    object: "event",
    type: "user.created",
    timestamp: at,
    instance_id: "ins_bench",
  });
  return { msgId: `msg_${runId}_${index}`, body };
}

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** `concurrency` workers sending signed deliveries for `ms`; a share are redeliveries. */
async function runRound(phase: PhaseResult, url: string, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const isDuplicate = phase.sent.length > 0 && Math.random() < duplicateRate;
      const event = isDuplicate
        ? phase.sent[Math.floor(Math.random() * phase.sent.length)]!
        : newEvent(phase.runId, phase.sent.length);
      if (!isDuplicate) phase.sent.push(event);
      const signature = signer.sign(event.msgId, new Date(), event.body);
      const t0 = performance.now();
      const response = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "svix-id": event.msgId,
          "svix-timestamp": String(Math.floor(Date.now() / 1000)),
          "svix-signature": signature,
        },
        body: event.body,
      });
      const answer = await response.text();
      phase.latencies.push(performance.now() - t0);
      if (response.status !== 200) {
        phase.failures += 1;
        // What a provider would be told (it retries any non-2xx), to tell load from faults.
        const code = /"code":"([A-Z_]+)"/.exec(answer)?.[1] ?? "";
        const key = `${response.status} ${code}`.trim();
        phase.failureAnswers.set(key, (phase.failureAnswers.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  phase.elapsedSeconds += (performance.now() - started) / 1000;
}

function newPhase(name: string): PhaseResult {
  return {
    name,
    runId: randomBytes(4).toString("hex"),
    sent: [],
    latencies: [],
    failures: 0,
    failureAnswers: new Map(),
    elapsedSeconds: 0,
  };
}

async function main(): Promise<void> {
  console.log(`preparing ${new URL(databaseUrl).pathname.slice(1)} ...`);
  await prepareTestDatabase(databaseUrl);

  // The real route, as createApp builds it.
  const config = loadBenchConfig(databaseUrl, {
    CLERK_WEBHOOK_SECRET: secret,
    JOBS_ENABLED: "false",
  });
  const db = createPrismaClient(databaseUrl, { maxConnections: poolSize });
  const app = createApp(
    buildContext({
      config,
      db,
      configureWebhooks: (webhooks) => {
        if (isNoopHandler) webhooks.replace("clerk", "user.created", () => Promise.resolve());
      },
    }),
  );

  // The baseline: same raw body parsing and signature check, one statement, no handler.
  const pool = new Pool({ connectionString: databaseUrl, max: poolSize });
  const baseline = express();
  baseline.post(
    "/baseline",
    express.raw({ type: () => true, limit: "512kb" }),
    async (req, res) => {
      try {
        const headers = req.headers as Record<string, string>;
        const payload = signer.verify(req.body as Buffer, headers) as { type: string };
        const result = await pool.query(
          `INSERT INTO processed_webhooks (provider, event_id, event_type) VALUES ($1, $2, $3)
         ON CONFLICT (provider, event_id) DO NOTHING`,
          ["bench-baseline", headers["svix-id"], payload.type],
        );
        res.json(result.rowCount === 1 ? { received: true } : { received: true, duplicate: true });
      } catch {
        res.status(400).json({ error: { code: "BAD_REQUEST", message: "rejected" } });
      }
    },
  );

  const real = await listen(app);
  const base = await listen(baseline);
  try {
    console.log(
      `concurrency ${concurrency}, ${Math.round(duplicateRate * 100)}% duplicates, ` +
        `${durationMs} ms per target (alternating rounds), pool ${poolSize}`,
    );
    const baselineResult = newPhase("baseline (verify + 1 INSERT, pg)");
    const realResult = newPhase("POST /webhooks/clerk (claim + handler, atomic)");
    // Warm both paths (connections, JIT), then alternate so that load from elsewhere on the
    // machine weighs on both alike.
    await runRound(newPhase("warm-up"), `${base.url}/baseline`, 500);
    await runRound(newPhase("warm-up"), `${real.url}/webhooks/clerk`, 500);
    const rounds = 4;
    for (let round = 0; round < rounds; round += 1) {
      await runRound(baselineResult, `${base.url}/baseline`, durationMs / rounds);
      await runRound(realResult, `${real.url}/webhooks/clerk`, durationMs / rounds);
    }

    const users = await pool.query<{ count: string }>(
      "SELECT count(*) FROM users WHERE clerk_id LIKE $1",
      [`user_bench_${realResult.runId}_%`],
    );
    const realRecords = await pool.query<{ count: string }>(
      "SELECT count(*) FROM processed_webhooks WHERE provider = 'clerk' AND event_id LIKE $1",
      [`msg_${realResult.runId}_%`],
    );
    const baseRecords = await pool.query<{ count: string }>(
      "SELECT count(*) FROM processed_webhooks WHERE provider = 'bench-baseline' AND event_id LIKE $1",
      [`msg_${baselineResult.runId}_%`],
    );

    const summary = (r: PhaseResult) => {
      const sorted = [...r.latencies].sort((a, b) => a - b);
      return {
        eventsPerSecond: r.latencies.length / r.elapsedSeconds,
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
      };
    };
    const baseSummary = summary(baselineResult);
    const realSummary = summary(realResult);
    const rows = [
      { r: baselineResult, s: baseSummary },
      { r: realResult, s: realSummary },
    ].map(({ r, s }) => ({
      phase: r.name,
      "events/s": Math.round(s.eventsPerSecond),
      "p50 ms": Number(s.p50.toFixed(2)),
      "p99 ms": Number(s.p99.toFixed(2)),
      requests: r.latencies.length,
      distinct: r.sent.length,
      "non-200": r.failures,
    }));
    console.table(rows);
    // Exactly once: every distinct event has one record and one effect, and no delivery failed.
    const effectsOk =
      (isNoopHandler || Number(users.rows[0]!.count) === realResult.sent.length) &&
      Number(realRecords.rows[0]!.count) === realResult.sent.length &&
      realResult.failures === 0;
    console.log(
      `webhook route effects: ${users.rows[0]!.count} users and ${realRecords.rows[0]!.count} records for ` +
        `${realResult.sent.length} distinct events, ${realResult.failures} failed deliveries -> ${effectsOk ? "OK" : "MISMATCH"}`,
    );
    console.log(
      `baseline: ${baseRecords.rows[0]!.count} records for ${baselineResult.sent.length} distinct events, ` +
        `${baselineResult.failures} failed deliveries`,
    );
    for (const result of [realResult, baselineResult]) {
      if (result.failureAnswers.size > 0) {
        console.log(
          `${result.name}: non-200 answers ${JSON.stringify([...result.failureAnswers])}`,
        );
      }
    }
    const ratio = realSummary.eventsPerSecond / baseSummary.eventsPerSecond;
    console.log(
      `throughput ratio (webhooks / baseline): ${(ratio * 100).toFixed(1)}% (target >= 50%) -> ` +
        (ratio >= 0.5 ? "MET" : "BELOW TARGET"),
    );
    if (!effectsOk) process.exitCode = 1;
  } finally {
    await new Promise((resolve) => real.server.close(resolve));
    await new Promise((resolve) => base.server.close(resolve));
    await pool.end();
    await db.$disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
