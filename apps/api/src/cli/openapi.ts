/**
 * `pnpm --filter @zigznote/api openapi [file]`: writes the OpenAPI document (what `/openapi.json`
 * serves) to `file`, or standard output, without a database or a server.
 */
import { writeFileSync } from "node:fs";
import { createPrismaClient } from "@zigznote/database";
import { appOpenApiDocument } from "../app";
import { loadConfig } from "../config";
import { buildContext } from "../context";

async function main(): Promise<void> {
  // Routes are declared from a context; nothing here connects (Prisma connects on first query).
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: "postgresql://localhost:5432/unused",
    JOBS_ENABLED: "false",
  });
  const db = createPrismaClient(config.DATABASE_URL!, { maxConnections: 1 });
  const document = appOpenApiDocument(buildContext({ config, db }).routes);
  const text = `${JSON.stringify(document, null, 2)}\n`;
  const file = process.argv[2];
  if (file) writeFileSync(file, text);
  else process.stdout.write(text);
  await db.$disconnect();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
