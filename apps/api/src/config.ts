import { z } from "zod";

/**
 * The environment, parsed once at start-up. `process.env` is read here and nowhere else:
 * everything else receives the frozen `Config`. A bad value stops the process with a message
 * naming the variable.
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
  });

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
  MIGRATE_ON_START: booleanFromEnv.optional(),
  EMBEDDED_DB_DIR: z.string().default(".data/pglite"),
  EMBEDDED_DB_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  REDIS_URL: optionalString.pipe(z.url({ protocol: /^rediss?$/ }).optional()),

  TRUST_PROXY: trustProxy,
  JSON_BODY_LIMIT: byteSize.default("1mb"),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  JOBS_ENABLED: booleanFromEnv.default(true),

  RECALL_API_KEY: optionalString,
  RECALL_API_BASE_URL: z.url({ protocol: /^https?$/ }).default("https://us-east-1.recall.ai"),
  RECALL_TIMEOUT_MS: z.coerce.number().int().min(50).max(120_000).default(10_000),
  RECALL_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  RECALL_RETRY_BASE_MS: z.coerce.number().int().min(0).max(60_000).default(250),
  RECALL_RETRY_MAX_MS: z.coerce.number().int().min(0).max(120_000).default(5_000),
  RECALL_BOT_NAME: z.string().trim().min(1).max(100).default("zigznote"),

  STRIPE_PRICE_PRO: optionalString,
  STRIPE_PRICE_BUSINESS: optionalString,
});

export type Config = Readonly<z.infer<typeof envSchema>>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((issue) => `  - ${issue}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses `env` (default: the process environment) into a frozen Config or throws ConfigError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const result = envSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
    );
  }
  return Object.freeze(result.data);
}
