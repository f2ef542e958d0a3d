/**
 * `pnpm -s --filter @zigznote/api api-key:create --org <organization> --name <name> [--scopes ...]`:
 * the operators' way in on a database of their own, before Clerk is set up. Talks to the database
 * directly (DATABASE_URL, or the embedded one: through the running API when one serves it),
 * creates the organization when it does not exist, and prints the new API key alone on stdout's
 * last line, once; only its hash is stored. Everything else goes to stderr, so
 * `KEY=$(pnpm -s --filter @zigznote/api api-key:create --org acme --name ops)` works.
 */
import { parseArgs } from "node:util";
import { createPrismaClient, seedPlans } from "@zigznote/database";
import pino from "pino";
import { loadConfigOrReport } from "../config";
import { SCOPES } from "../http/scopes";
import {
  API_KEY_MAX_LIFETIME_DAYS as MAX_LIFETIME_DAYS,
  bootstrapApiKey,
  OperatorInputError,
  parseScopes,
} from "../identity";
import { createLogger } from "../lib/logger";
import { openDatabase } from "../server";

const USAGE = `usage: api-key:create --org <organization> --name <name> [--scopes <list>] [--expires-in <days>d]
  --org         an organization id (UUID), a Clerk organization id (org_...) or a name;
                created (on the free plan) when no organization has that Clerk id or name
  --name        what the key is for, as listings show it (1-100 characters)
  --scopes      comma-separated (default: all): ${SCOPES.join(",")}
  --expires-in  lifetime in days, e.g. 90d (at most ${MAX_LIFETIME_DAYS}d; default: never expires)`;

const DATABASE_HINT =
  "Check DATABASE_URL (or unset it for the embedded database) and that the migrations ran " +
  "(pnpm --filter @zigznote/database migrate).";

/** Prisma's messages open with a code frame; their last line says what happened. */
function lastLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (
    message
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean)
      .at(-1) ?? message
  );
}

function parseLifetimeDays(value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  const match = /^(\d{1,4})d$/.exec(value);
  const days = match ? Number(match[1]) : NaN;
  return days >= 1 && days <= MAX_LIFETIME_DAYS ? days : null;
}

async function main(argv: string[]): Promise<number> {
  let values: {
    org?: string;
    name?: string;
    scopes?: string;
    "expires-in"?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        org: { type: "string" },
        name: { type: "string" },
        scopes: { type: "string" },
        "expires-in": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(`api-key:create: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.error(USAGE);
    return 0;
  }
  const lifetimeDays = parseLifetimeDays(values["expires-in"]);
  if (!values.org || !values.name || lifetimeDays === null) {
    console.error(
      `api-key:create: --org and --name are required; --expires-in is <days>d\n${USAGE}`,
    );
    return 2;
  }
  let scopes;
  try {
    scopes = values.scopes === undefined ? [...SCOPES] : parseScopes(values.scopes);
  } catch (error) {
    console.error(`api-key:create: ${(error as Error).message}`);
    return 2;
  }

  const config = loadConfigOrReport();
  if (!config) return 1;
  // Logs go to stderr: stdout carries the key alone.
  const logger = createLogger(
    config.LOG_LEVEL === "info" ? "warn" : config.LOG_LEVEL,
    {},
    pino.destination(2),
  );
  const { url, embedded } = await openDatabase(config, logger, { shareRunning: true });
  const db = createPrismaClient(url, { maxConnections: 2 });
  try {
    // The organization's plan must exist; seeding is idempotent and keeps configured prices.
    await seedPlans(db, {
      stripePriceIds: { pro: config.STRIPE_PRICE_PRO, business: config.STRIPE_PRICE_BUSINESS },
    });
    const result = await bootstrapApiKey(
      { db },
      {
        organization: values.org,
        name: values.name,
        scopes,
        expiresAt:
          lifetimeDays === undefined ? null : new Date(Date.now() + lifetimeDays * 86_400_000),
      },
    );
    const { organization, apiKey } = result;
    console.error(
      `api-key:create: ${organization.isCreated ? "created" : "found"} organization "${organization.name}" (${organization.id})\n` +
        `api-key:create: key "${apiKey.name}" (id ${apiKey.prefix}) with ${apiKey.scopes.join(", ")}` +
        `${apiKey.expiresAt ? `, expires ${apiKey.expiresAt.toISOString()}` : ""}. ` +
        `It is shown once, below; only its hash is stored.\n` +
        `Try: curl -H "Authorization: Bearer $KEY" localhost:${config.PORT}/api/v1/meetings`,
    );
    process.stdout.write(`${result.plainKey}\n`);
    return 0;
  } catch (error) {
    if (error instanceof OperatorInputError) {
      console.error(`api-key:create: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await db.$disconnect();
    await embedded?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`api-key:create failed: ${lastLine(error)}\n${DATABASE_HINT}`);
    process.exitCode = 1;
  },
);
