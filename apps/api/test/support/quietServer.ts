import { loadConfig, type Config } from "../../src/config";

/**
 * The configuration of a server a test starts in its own process (`startServer`): on
 * `databaseUrl`, recordings in `storageDir`, any free port on loopback, no log, no jobs.
 */
export function quietServerConfig(databaseUrl: string, storageDir: string): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    JOBS_ENABLED: "false",
    STORAGE_DIR: storageDir,
  });
}
