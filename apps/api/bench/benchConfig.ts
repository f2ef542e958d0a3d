import { loadConfig, type Config } from "../src/config";

/**
 * The app's config for an in-process bench: production, silent, on `databaseUrl`, plus `env`.
 * Request budgets are off: a bench loads one organization far beyond any plan's budget.
 */
export function loadBenchConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: "production",
    LOG_LEVEL: "silent",
    RATE_LIMIT_ENABLED: "false",
    DATABASE_URL: databaseUrl,
    ...env,
  });
}
