/**
 * `pnpm bench:cleanup`: the cleanup worker at scale. Not a test: it prints figures.
 *
 * 1. 1,000,000 bots of which 10,000 are stuck (active, last status 3 hours old, known to a local
 *    Recall-speaking server that still shows them stuck): time of `cleanupOrphanedBots()` (which
 *    asks Recall about each, ends it with a conditional update and tells it to leave) against a
 *    single SQL UPDATE of the same rows, in the same run. The ratio is the price of checking
 *    with Recall and of never overwriting a webhook that lands in between.
 * 2. The purge of 100,000 expired meetings' recordings (real files on disk) by
 *    `cleanupOrphanedStorage()`.
 *
 * Env: BENCH_DATABASE_URL (default: TEST_DATABASE_URL's server, database `<name>_bench_cleanup`),
 * BENCH_BOTS (1000000), BENCH_STUCK (10000), BENCH_PURGE (100000),
 * BENCH_RECALL_LATENCY_MS (0: the fake answers at once), JOB_CONCURRENCY (8), JOB_BATCH_SIZE (500).
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { activeBotSql, createPrismaClient } from "@zigznote/database";
import { DEFAULT_TEST_DATABASE_URL, prepareTestDatabase } from "@zigznote/database/testing";
import pLimit from "p-limit";
import { buildContext } from "../src/context";
import { cleanupOrphanedBots } from "../src/bots";
import { cleanupOrphanedStorage } from "../src/recordings";
import { createLogger } from "../src/lib/logger";
import { RecallClient } from "../src/bots";
import { LocalDiskStorage, newStorageKey } from "../src/recordings";
import { startFakeRecall } from "../test/support/fakes/recallServer";
import { loadBenchConfig } from "./benchConfig";

const totalBots = Number(process.env.BENCH_BOTS ?? 1_000_000);
const stuckBots = Number(process.env.BENCH_STUCK ?? 10_000);
const purgeMeetings = Number(process.env.BENCH_PURGE ?? 100_000);
const recallLatencyMs = Number(process.env.BENCH_RECALL_LATENCY_MS ?? 0);

function benchUrl(): string {
  if (process.env.BENCH_DATABASE_URL) return process.env.BENCH_DATABASE_URL;
  const url = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
  url.pathname = `${url.pathname.replace(/^\//, "")}_bench_cleanup`;
  return url.toString();
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  const url = benchUrl();
  console.log(`bench:cleanup on ${url.replace(/\/\/[^@]*@/, "//")}`);
  await prepareTestDatabase(url);
  const db = createPrismaClient(url, { maxConnections: 12 });
  const recall = await startFakeRecall();
  const storageDir = await mkdtemp(path.join(tmpdir(), "zigznote-bench-storage-"));
  const config = loadBenchConfig(url, {
    STORAGE_DIR: storageDir,
    RECALL_API_BASE_URL: recall.baseUrl,
    RECALL_API_KEY: recall.apiKey,
    JOB_CONCURRENCY: process.env.JOB_CONCURRENCY ?? "8",
    JOB_BATCH_SIZE: process.env.JOB_BATCH_SIZE ?? "500",
  });
  const ctx = buildContext({
    config,
    db,
    logger: createLogger("silent"),
    storage: new LocalDiskStorage(storageDir),
  });
  const client = new RecallClient({
    baseUrl: recall.baseUrl,
    apiKey: recall.apiKey,
    timeoutMs: 10_000,
    maxRetries: 2,
    retryBaseMs: 10,
    retryMaxMs: 1_000,
  });

  try {
    // ---- seed -------------------------------------------------------------------------------
    let started = performance.now();
    await db.$executeRawUnsafe(
      "TRUNCATE bots, storage_objects, meetings, organizations, job_runs CASCADE",
    );
    const [org] = await db.$queryRaw<
      { id: string }[]
    >`INSERT INTO organizations (name) VALUES ('bench') RETURNING id`;
    const orgId = org!.id;
    // One meeting per stuck bot (the active-bot indexes allow one active bot per meeting and URL).
    await db.$executeRaw`
      INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform)
      SELECT ${orgId}::uuid, 'meeting ' || g, 'https://zoom.us/j/' || (10000000000 + g), 'zoom:' || (10000000000 + g), 'zoom'
        FROM generate_series(1, ${stuckBots}) g`;
    await db.$executeRaw`
      INSERT INTO bots (meeting_id, organization_id, normalized_meeting_url, recall_bot_id, status, last_status_at, ended_at, created_at)
      SELECT m.id, m.organization_id, m.normalized_meeting_url, 'ended-' || g, 'done',
             now() - interval '30 days', now() - interval '30 days', now() - interval '30 days'
        FROM generate_series(1, ${totalBots - stuckBots}) g
        JOIN (SELECT id, organization_id, normalized_meeting_url, row_number() OVER (ORDER BY id) - 1 AS i FROM meetings) m
          ON m.i = g % ${stuckBots}`;
    await db.$executeRaw`ANALYZE bots`;
    console.log(
      `seeded ${totalBots - stuckBots} ended bots over ${stuckBots} meetings in ${seconds(performance.now() - started)}`,
    );

    // The stuck bots exist at "Recall" too, still showing the status we last saw 3 hours ago.
    started = performance.now();
    const meetings = await db.meeting.findMany({
      select: { id: true, meetingUrl: true },
      orderBy: { id: "asc" },
    });
    const stuckAt = new Date(Date.now() - 3 * 60 * 60 * 1000);
    const limit = pLimit(32);
    const remoteIds = await Promise.all(
      meetings.map((meeting) =>
        limit(async () => {
          const bot = await client.createBot({
            meetingUrl: meeting.meetingUrl,
            botName: "bench",
            metadata: { meetingId: meeting.id, organizationId: orgId },
            idempotencyKey: meeting.id,
          });
          recall.updateBot(bot.id, (remote) => {
            remote.status_changes = [
              {
                code: "in_waiting_room",
                sub_code: null,
                message: null,
                created_at: stuckAt.toISOString(),
              },
            ];
          });
          return { meetingId: meeting.id, recallBotId: bot.id };
        }),
      ),
    );
    const seedStuck = async () => {
      await db.$executeRaw`
        INSERT INTO bots (meeting_id, organization_id, normalized_meeting_url, recall_bot_id, status, last_status_at)
        SELECT m.id, m.organization_id, m.normalized_meeting_url, r.recall_bot_id, 'in_waiting_room', ${stuckAt}
          FROM meetings m JOIN unnest(${remoteIds.map((r) => r.meetingId)}::uuid[], ${remoteIds.map((r) => r.recallBotId)}::text[]) AS r(meeting_id, recall_bot_id)
            ON r.meeting_id = m.id`;
    };
    await seedStuck();
    await db.$executeRaw`ANALYZE bots`;
    console.log(
      `registered ${stuckBots} stuck bots at the fake Recall in ${seconds(performance.now() - started)} (Recall latency ${recallLatencyMs} ms)`,
    );
    recall.setLatency(recallLatencyMs);

    // ---- cleanupOrphanedBots vs one UPDATE -------------------------------------------------
    const requestsBefore = recall.requests.length;
    started = performance.now();
    const result = await cleanupOrphanedBots(
      { ...ctx.modules.bots.deps.stuckBots, recall: client },
      { now: new Date() },
    );
    const jobMs = performance.now() - started;
    const recallCalls = recall.requests.length - requestsBefore;
    const stillActive = await db.bot.count({ where: { status: "in_waiting_room" } });
    console.log(
      `cleanupOrphanedBots: ${seconds(jobMs)} for ${result.summary.timedOut} stuck bots ` +
        `(${Math.round(result.summary.timedOut / (jobMs / 1000))} bots/s, ${recallCalls} Recall calls, concurrency ${config.JOB_CONCURRENCY}); ` +
        `still active afterwards: ${stillActive}; summary ${JSON.stringify(result.summary)}`,
    );

    // Same rows back to stuck, then the bare UPDATE a job without Recall checks would run.
    await db.$executeRaw`DELETE FROM bots WHERE recall_bot_id = ANY(${remoteIds.map((r) => r.recallBotId)}::text[])`;
    await seedStuck();
    await db.$executeRaw`ANALYZE bots`;
    started = performance.now();
    const updated = await db.$executeRaw`
      UPDATE bots SET status = 'call_ended', terminal_reason = 'timeout', ended_at = now(), last_status_at = now(), updated_at = now()
       WHERE ${activeBotSql}
         AND last_status_at < now() - interval '2 hours'`;
    const updateMs = performance.now() - started;
    console.log(`baseline single UPDATE: ${updateMs.toFixed(1)} ms for ${updated} rows`);
    console.log(
      `ratio cleanupOrphanedBots / single UPDATE: ${(jobMs / updateMs).toFixed(1)}x ` +
        `(the job makes 2 Recall calls and 1 conditional UPDATE per bot; selection is a range scan of the partial index over active bots)`,
    );

    // ---- cleanupOrphanedStorage ------------------------------------------------------------
    started = performance.now();
    await db.$executeRawUnsafe("TRUNCATE bots, storage_objects, meetings CASCADE");
    await db.$executeRaw`
      INSERT INTO meetings (organization_id, title, meeting_url, normalized_meeting_url, platform, deleted_at)
      SELECT ${orgId}::uuid, 'deleted ' || g, 'https://zoom.us/j/' || (20000000000 + g), 'zoom:' || (20000000000 + g), 'zoom', now() - interval '31 days'
        FROM generate_series(1, ${purgeMeetings}) g`;
    const expired = await db.meeting.findMany({ select: { id: true } });
    const payload = Buffer.alloc(512, 1);
    const writer = pLimit(64);
    const keys = await Promise.all(
      expired.map((meeting) =>
        writer(async () => {
          const key = newStorageKey(orgId);
          await mkdir(path.dirname(path.join(storageDir, key)), { recursive: true });
          await writeFile(path.join(storageDir, key), payload);
          return { meetingId: meeting.id, key };
        }),
      ),
    );
    await db.$executeRaw`
      INSERT INTO storage_objects (organization_id, meeting_id, key, content_type, size_bytes)
      SELECT ${orgId}::uuid, k.meeting_id, k.key, 'video/mp4', 512
        FROM unnest(${keys.map((k) => k.meetingId)}::uuid[], ${keys.map((k) => k.key)}::text[]) AS k(meeting_id, key)`;
    console.log(
      `seeded ${purgeMeetings} expired meetings with one ${payload.length}-byte file each in ${seconds(performance.now() - started)}`,
    );

    started = performance.now();
    const purge = await cleanupOrphanedStorage(ctx.modules.recordings.deps.purge, {
      now: new Date(),
    });
    const purgeMs = performance.now() - started;
    const filesLeft = (await readdir(path.join(storageDir, orgId, "recordings"))).length;
    const rowsLeft = await db.storageObject.count();
    console.log(
      `cleanupOrphanedStorage: ${seconds(purgeMs)} for ${purge.rowsAffected} meetings ` +
        `(${Math.round(purge.rowsAffected / (purgeMs / 1000))} meetings/s, batch ${config.JOB_BATCH_SIZE}, concurrency ${config.JOB_CONCURRENCY}); ` +
        `files left ${filesLeft}, rows left ${rowsLeft}, summary ${JSON.stringify(purge.summary)}`,
    );
  } finally {
    await recall.close();
    await db.$disconnect();
    await rm(storageDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
