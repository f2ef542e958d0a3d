import path from "node:path";
import { STATEMENT_GRACE_MS } from "@zigznote/database";
import { z } from "zod";
import { compile as compileTrust } from "proxy-addr";
import { parseClerkJwtKey } from "./lib/clerkJwtKey";

/**
 * apps/api/.data: where the local data lives by default (the embedded database, local recordings,
 * the development key) whatever directory a process starts in: `pnpm start` runs the server in
 * apps/api, `node apps/api/dist/server.js` and the CLIs may run from the repository's root, and
 * all of them must find the same data. A relative path set in the environment is the caller's.
 */
const API_DATA_DIR = path.resolve(__dirname, "..", ".data");

/**
 * The environment, parsed once at start-up. `process.env` is read here and nowhere else (but
 * for the OTEL_* variables, read by `instrument.ts`): everything else receives the frozen
 * `Config`. A bad value stops the process with a message naming the variable.
 */

const booleanFromEnv = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((value) => value === "true" || value === "1" || value === "yes");

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === "" ? undefined : value))
  .optional();

/**
 * `TRUST_PROXY` as Express understands it: "false" (default: the socket address is the client),
 * "true" (trust every proxy: only behind a proxy that overwrites X-Forwarded-For), a hop count,
 * or a comma-separated list of addresses/subnets/presets ("loopback", "10.0.0.0/8").
 */
const trustProxy = z
  .string()
  .trim()
  .default("false")
  .transform((value): boolean | number | string[] => {
    if (value === "" || value === "false") return false;
    if (value === "true") return true;
    if (/^\d+$/.test(value)) return Number(value);
    return value
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part.length > 0);
  })
  .superRefine((value, ctx) => {
    if (!Array.isArray(value)) return;
    // What Express itself would throw on at start, named here: proxy-addr is its parser.
    try {
      compileTrust(value);
    } catch (error) {
      ctx.addIssue({
        code: "custom",
        message:
          `${error instanceof Error ? error.message : String(error)}: expected false, true, a ` +
          'hop count, or addresses, subnets and presets ("loopback", "10.0.0.0/8")',
      });
    }
  });

/** A comma-separated list ("a, b") as an array without empty parts. */
const commaList = z
  .string()
  .default("")
  .transform((value) =>
    value
      .split(",")
      .map((part) => part.trim())
      .filter((part) => part.length > 0),
  );

/** A PEM block; env files often carry it on one line with literal "\n" escapes. */
const pem = optionalString.transform((value) => value?.replace(/\\n/g, "\n"));

/** CLERK_JWT_KEY, parsed now so that a key Clerk's SDK cannot use stops the start. */
const clerkJwtKey = pem.transform((value, ctx) => {
  if (value === undefined) return undefined;
  const parsed = parseClerkJwtKey(value);
  if (parsed.ok) return parsed.pem;
  ctx.addIssue({ code: "custom", message: parsed.problem });
  return z.NEVER;
});

/** Clerk user ids ("user_..."), comma-separated. */
const clerkUserIds = commaList.pipe(
  z.array(
    z.string().regex(/^user_[A-Za-z0-9_]{1,100}$/, "expected Clerk user ids such as user_2abc..."),
  ),
);

/** Origins ("https://admin.example.com"), comma-separated: scheme, host and port only. */
const origins = commaList.pipe(
  z.array(
    z.string().refine((value) => {
      try {
        return new URL(value).origin === value;
      } catch {
        return false;
      }
    }, "expected origins such as https://app.example.com (no path, no trailing slash)"),
  ),
);

const byteSize = z
  .string()
  .trim()
  .regex(/^\d+\s*(b|kb|mb|gb)?$/i, "expected a size such as 1mb, 512kb or 1048576");

export const envSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().default("0.0.0.0"),
  PORT: z.coerce.number().int().min(0).max(65535).default(3001),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
  /**
   * Longest a database statement may run (ms): the server cancels it then, and when the server
   * does not answer at all the request gives up 1 s later (503). Below the webhook transaction
   * timeout (checked below).
   */
  DATABASE_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Longest a request waits for a database connection, pooled or new (ms; then 503). */
  DATABASE_POOL_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5_000),
  MIGRATE_ON_START: booleanFromEnv.optional(),
  EMBEDDED_DB_DIR: z.string().default(path.join(API_DATA_DIR, "pglite")),
  EMBEDDED_DB_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  REDIS_URL: optionalString.pipe(z.url({ protocol: /^rediss?$/ }).optional()),

  TRUST_PROXY: trustProxy,
  JSON_BODY_LIMIT: byteSize.default("1mb"),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  JOBS_ENABLED: booleanFromEnv.default(true),
  CRON_TIMEZONE: z
    .string()
    .default("UTC")
    .refine((zone) => {
      try {
        new Intl.DateTimeFormat("en-US", { timeZone: zone });
        return true;
      } catch {
        return false;
      }
    }, "expected an IANA timezone such as UTC or Europe/Paris"),
  /** Rows a job handles per batch (keeps memory and transactions small). */
  JOB_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Parallel calls a job makes to Recall or storage. */
  JOB_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  STORAGE_PURGE_AFTER_DAYS: z.coerce.number().int().min(0).default(30),
  /** An active bot with no status change for this long is checked with Recall and ended. */
  STUCK_BOT_AFTER_MINUTES: z.coerce.number().int().min(1).default(120),
  /**
   * Processed-webhook records are kept this long. A record is what makes a provider's late retry
   * a duplicate: Stripe retries for 3 days, Svix (Clerk, Recall) for about 5, so a shorter
   * retention would let a retry apply its event a second time. Hence the floor of 7 days.
   */
  WEBHOOK_RETENTION_DAYS: z.coerce.number().int().min(7).default(7),

  /** Where recordings live: `local` (files under STORAGE_DIR) or `s3` (an S3-compatible bucket). */
  STORAGE_DRIVER: z.enum(["local", "s3"]).default("local"),
  STORAGE_DIR: z.string().default(path.join(API_DATA_DIR, "storage")),
  /** Lifetime of presigned download and upload URLs (object storage). */
  STORAGE_URL_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60 * 60)
    .default(300),
  // The S3 driver. Credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID and
  // AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity, instance roles), never from our own names.
  S3_BUCKET: optionalString.pipe(
    z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "expected an S3 bucket name (3-63 characters)")
      .optional(),
  ),
  S3_REGION: optionalString.pipe(
    z
      .string()
      .regex(/^[a-z0-9-]{2,40}$/, "expected a region such as us-east-1")
      .optional(),
  ),
  /** Unset for AWS; the server's URL for R2, GCS interoperability, MinIO, Ceph. */
  S3_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  S3_FORCE_PATH_STYLE: booleanFromEnv.default(false),
  /** Keys are written under this prefix (a folder of a shared bucket), "/" added when missing. */
  S3_KEY_PREFIX: optionalString
    .pipe(
      z
        .string()
        .regex(
          /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\/?$/,
          "expected folder names separated by /, such as zigznote/recordings",
        )
        .optional(),
    )
    .transform((value) =>
      value === undefined || value.endsWith("/") ? (value ?? "") : `${value}/`,
    ),
  RECORDING_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 1024 * 1024 * 1024),

  REDIS_KEY_PREFIX: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9:_-]{1,64}$/)
    .default("zigznote"),

  CLERK_JWT_KEY: clerkJwtKey,
  CLERK_SECRET_KEY: optionalString,
  /** Clerk's Backend API (adding members; the JWKS when only CLERK_SECRET_KEY is set). */
  CLERK_API_URL: z.url({ protocol: /^https?$/ }).default("https://api.clerk.com"),
  /** Longest wait for one Backend API call (the SDK sets none). */
  CLERK_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(10_000),
  CLERK_AUTHORIZED_PARTIES: commaList,
  /**
   * Platform admins (the admin console, `/api/v1/admin`): these Clerk user ids, besides users
   * whose session token carries the platform-admin claim (README).
   */
  PLATFORM_ADMIN_USER_IDS: clerkUserIds,
  /**
   * Where operators' notices (a payment disputed) go besides the e-mails of the users listed in
   * PLATFORM_ADMIN_USER_IDS: platform admins known only by the session claim, or a team inbox.
   */
  PLATFORM_ADMIN_EMAILS: commaList.pipe(
    z.array(z.email({ message: "expected e-mail addresses such as ops@example.com" })),
  ),
  /**
   * Origins besides the API's own that may send cookie-authenticated writes (CSRF check: a
   * session read from the `__session` cookie writes only with an allowed Origin).
   */
  ADMIN_ALLOWED_ORIGINS: origins,
  /** Key of `pnpm dev:token`: trusted without Clerk, in development on the embedded database. */
  DEV_SESSION_KEY_FILE: z.string().default(path.join(API_DATA_DIR, "dev-session-key.pem")),
  /** Clerk publishable key (`pk_...`): the admin console signs in with Clerk's React SDK. */
  CLERK_PUBLISHABLE_KEY: optionalString.pipe(
    z
      .string()
      .regex(
        /^pk_(test|live)_[A-Za-z0-9+/=]+$/,
        "must be a Clerk publishable key (pk_test_... or pk_live_...)",
      )
      .optional(),
  ),
  /** The admin console's build folder (default: apps/admin/dist of this checkout). */
  ADMIN_CONSOLE_DIR: optionalString,

  /** How long a write's answer is kept for repeats with its `Idempotency-Key`. */
  IDEMPOTENCY_KEY_TTL_HOURS: z.coerce.number().int().min(1).max(720).default(24),
  /**
   * The lease of a claimed key whose request has not answered: the instance running the request
   * renews it every third of it, however long the request runs; a claim not renewed (its instance
   * died) blocks repeats (409) this long after its last renewal, then a repeat runs.
   */
  IDEMPOTENCY_LOCK_SECONDS: z.coerce.number().int().min(10).max(3600).default(30),

  /** Request budgets per minute: every key and user of an organization draw on one, by plan. */
  RATE_LIMIT_ENABLED: booleanFromEnv.default(true),
  RATE_LIMIT_PER_MINUTE_FREE: z.coerce.number().int().min(1).default(120),
  RATE_LIMIT_PER_MINUTE_PRO: z.coerce.number().int().min(1).default(600),
  RATE_LIMIT_PER_MINUTE_BUSINESS: z.coerce.number().int().min(1).default(3000),
  /** Requests without valid credentials, per client address (TRUST_PROXY decides which). */
  RATE_LIMIT_PER_MINUTE_UNAUTHENTICATED: z.coerce.number().int().min(1).default(60),

  API_KEY_MAX_FAILURES: z.coerce.number().int().min(1).default(10),
  API_KEY_IP_MAX_FAILURES: z.coerce.number().int().min(1).default(50),
  API_KEY_FAILURE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  API_KEY_LOCKOUT_SECONDS: z.coerce.number().int().min(1).default(900),
  /**
   * Counters in memory at most, per store: the lockout's pairs, the lockout's addresses, the
   * request budgets' organizations and addresses each have their own (none evicts another).
   */
  API_KEY_LOCKOUT_MAX_ENTRIES: z.coerce.number().int().min(1).default(50_000),
  API_KEY_CACHE_SECONDS: z.coerce.number().int().min(0).default(60),
  API_KEY_LAST_USED_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(60),

  RECALL_API_KEY: optionalString,
  RECALL_API_BASE_URL: z.url({ protocol: /^https?$/ }).default("https://us-east-1.recall.ai"),
  RECALL_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(10_000),
  RECALL_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  RECALL_RETRY_BASE_MS: z.coerce.number().int().min(0).max(60_000).default(250),
  RECALL_RETRY_MAX_MS: z.coerce.number().int().min(0).max(120_000).default(5_000),
  RECALL_BOT_NAME: z.string().trim().min(1).max(100).default("zigznote"),

  STRIPE_PRICE_PRO: optionalString,
  STRIPE_PRICE_BUSINESS: optionalString,

  // Webhook signing secrets: a provider whose secret is unset answers 503 and stores nothing.
  STRIPE_WEBHOOK_SECRET: optionalString,
  CLERK_WEBHOOK_SECRET: optionalString,
  RECALL_WEBHOOK_SECRET: optionalString,
  WEBHOOK_BODY_LIMIT: byteSize.default("512kb"),
  /** Longest a webhook's claim-and-handle transaction may run (ms). */
  WEBHOOK_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
  /**
   * Longest a delivery waits for a lock (ms): above all, a duplicate waiting for the first delivery
   * of the same event to commit or roll back. It then answers 409 and the provider retries.
   */
  WEBHOOK_LOCK_TIMEOUT_MS: z.coerce.number().int().min(10).default(5_000),
  STRIPE_SECRET_KEY: optionalString,
  STRIPE_API_HOST: optionalString,
  STRIPE_API_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  STRIPE_API_PROTOCOL: z.enum(["http", "https"]).optional(),
  STRIPE_MAX_NETWORK_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  STRIPE_TIMEOUT_MS: z.coerce.number().int().positive().default(20_000),
  /** Checkout computes tax (Stripe Tax) and collects the billing address it needs. */
  STRIPE_AUTOMATIC_TAX: booleanFromEnv.default(false),
  /** Checkout lets business customers enter their tax id (VAT number, ...). */
  STRIPE_TAX_ID_COLLECTION: booleanFromEnv.default(false),
  /** Checkout accepts promotion codes. */
  STRIPE_ALLOW_PROMOTION_CODES: booleanFromEnv.default(false),
  /**
   * Days of free trial on a subscription started through Checkout (0: none). A trial starts
   * without a card; if none is added by its end, Stripe cancels the subscription (back to free).
   */
  STRIPE_TRIAL_DAYS: z.coerce.number().int().min(0).max(730).default(0),
  /** While a payment of the organization is disputed (chargeback open), writes are refused. */
  DISPUTE_READ_ONLY: booleanFromEnv.default(false),
  GRACE_PERIOD_DAYS: z.coerce.number().positive().default(7),
  MAX_RETRY_COUNT: z.coerce.number().int().min(1).default(4),
  STORAGE_GRACE_DAYS: z.coerce.number().positive().default(7),

  /** How notices are e-mailed: `log` renders them into the log, `smtp` sends to SMTP_URL. */
  EMAIL_TRANSPORT: z.enum(["log", "smtp"]).default("log"),
  /** smtp://user:pass@host:587 (STARTTLS when offered) or smtps://host:465; needed for smtp. */
  SMTP_URL: optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  EMAIL_FROM: z
    .string()
    .trim()
    .regex(/^([^<>\r\n]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/, {
      message: "expected an address or a display name with one: zigznote <notices@example.com>",
    })
    .default("zigznote <notices@zigznote.localhost>"),
  /** The web app's origin: e-mail links, Checkout's return pages and the portal's return. */
  APP_URL: z.url({ protocol: /^https?$/ }).default("http://localhost:3000"),

  // The OpenTelemetry variables (OTEL_*) are not the app's: `instrument.ts` reads them before
  // this runs, and warns about a value it cannot use rather than refusing to start, as the
  // OpenTelemetry specification asks (`lib/tracingConfig.ts`).
});

/** The environment, with the settings that must agree with each other checked together. */
const configSchema = envSchema
  .refine(
    // A statement on a silent database fails (client side) STATEMENT_GRACE_MS after its timeout:
    // still inside the webhook transaction, which then rolls back with a clear cause.
    (env) =>
      env.DATABASE_STATEMENT_TIMEOUT_MS + STATEMENT_GRACE_MS <= env.WEBHOOK_TRANSACTION_TIMEOUT_MS,
    {
      path: ["DATABASE_STATEMENT_TIMEOUT_MS"],
      message: `must be at least ${STATEMENT_GRACE_MS} ms below WEBHOOK_TRANSACTION_TIMEOUT_MS`,
    },
  )
  .refine((env) => env.EMAIL_TRANSPORT !== "smtp" || env.SMTP_URL !== undefined, {
    path: ["SMTP_URL"],
    message: "is required when EMAIL_TRANSPORT=smtp",
  })
  .refine((env) => env.STORAGE_DRIVER !== "s3" || env.S3_BUCKET !== undefined, {
    path: ["S3_BUCKET"],
    message: "is required when STORAGE_DRIVER=s3",
  })
  .refine((env) => env.STORAGE_DRIVER !== "s3" || env.S3_REGION !== undefined, {
    path: ["S3_REGION"],
    message: "is required when STORAGE_DRIVER=s3 (us-east-1 suits most S3-compatible servers)",
  });

export type Config = Readonly<z.infer<typeof envSchema>>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/**
 * For programs' entry points: the configuration, or null after printing why it is invalid (the
 * caller exits with status 1).
 */
export function loadConfigOrReport(env: NodeJS.ProcessEnv = process.env): Config | null {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    return null;
  }
}

/** Parses `env` (default: the process environment) into a frozen Config or throws ConfigError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
    );
  }
  return Object.freeze(result.data);
}
