import { spawn } from "node:child_process";
import path from "node:path";

/** The package root (holds prisma.config.ts and prisma/migrations), from src/ or dist/. */
export const databasePackageRoot = path.resolve(__dirname, "..");

/**
 * Applies every committed migration not yet applied (`prisma migrate deploy`) to `databaseUrl`.
 * Runs the Prisma CLI on its WASM schema engine, so nothing is downloaded. Safe to run
 * concurrently: Prisma serializes deploys with an advisory lock.
 */
export async function runMigrations(databaseUrl: string): Promise<void> {
  const cli = require.resolve("prisma/build/index.js", { paths: [databasePackageRoot] });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "migrate", "deploy"], {
      cwd: databasePackageRoot,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PRISMA_QUERY_ENGINE_LIBRARY: "/dev/null",
        PRISMA_SCHEMA_ENGINE_BINARY: "/bin/false",
        PRISMA_HIDE_UPDATE_MESSAGE: "1",
        CHECKPOINT_DISABLE: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`prisma migrate deploy failed (exit ${String(code)}):\n${output}`));
    });
  });
}
