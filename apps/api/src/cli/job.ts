/**
 * `pnpm --filter @zigznote/api job <name>`: runs one scheduled job now, through the same runner
 * as the scheduler (so it is recorded, and it will not overlap a run in progress elsewhere).
 * With no DATABASE_URL it uses the embedded database: through the running API's server when one
 * serves it, else it opens the folder itself.
 * With an OTLP endpoint set, the run is traced like a scheduled one (instrument.ts, first).
 */
// First: tracing must be set up before the modules it instruments are loaded.
import { tracing } from "../instrument";
import { createPrismaClient } from "@zigznote/database";
import { Redis } from "ioredis";
import { loadConfigOrReport, type Config } from "../config";
import { buildContext } from "../context";
import { runJob } from "../jobs";
import { createLogger } from "../lib/logger";
import { openDatabase } from "../server";

async function main(): Promise<number> {
  const name = process.argv[2];
  const config = loadConfigOrReport();
  if (!config) return 1;
  const names = listJobNames(config);
  if (!name || !names.includes(name)) {
    console.error(`usage: job <name>\njobs: ${names.join(", ")}`);
    return 2;
  }
  const logger = createLogger(config.LOG_LEVEL);
  tracing?.reportProblemsTo(logger);
  const { url, embedded } = await openDatabase(config, logger, { shareRunning: true });
  const db = createPrismaClient(url, { maxConnections: 4 });
  const redis = config.REDIS_URL ? new Redis(config.REDIS_URL, { maxRetriesPerRequest: 2 }) : null;
  try {
    const ctx = buildContext({ config, db, logger, redis });
    // The app's one job list, as the server's scheduler and the console have it.
    const job = ctx.jobs.find((candidate) => candidate.name === name)!;
    const outcome = await runJob(ctx, job, {
      scheduledFor: ctx.clock.now(),
      instanceId: `cli:${process.pid}`,
    });
    console.log(JSON.stringify({ job: name, ...outcome }));
    return outcome.status === "failed" ? 1 : 0;
  } finally {
    await db.$disconnect();
    await redis?.quit();
    await embedded?.stop();
    // The run's spans leave before the process exits.
    await tracing?.shutdown();
  }
}

/**
 * The names of the app's jobs, read from a context whose client never connects (Prisma connects
 * on the first query): a usage error opens no database.
 */
function listJobNames(config: Config): string[] {
  const db = createPrismaClient("postgresql://localhost:5432/unused", { maxConnections: 1 });
  return buildContext({ config, db }).jobs.map((job) => job.name);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
