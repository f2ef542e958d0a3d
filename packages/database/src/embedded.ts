import { mkdirSync } from "node:fs";
import net from "node:net";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgres {
  /** postgresql:// URL of the embedded server, for Prisma and migrations. */
  url: string;
  port: number;
  dataDir: string;
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  /** Folder that keeps the data between starts (created if missing). */
  dataDir: string;
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  host?: string;
  /** Concurrent client connections (the pool needs more than one). */
  maxConnections?: number;
}

async function findFreePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("could not determine a free port"));
      });
    });
  });
}

/**
 * PostgreSQL compiled to WASM (PGlite), persisted in `dataDir` and served on a local port over
 * the wire protocol, so the same pg/Prisma code runs without a database server. One backend
 * serves the connections in turn: meant for a zero-setup first start and demos, not for load.
 */
export async function startEmbeddedPostgres(
  options: StartEmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const host = options.host ?? "127.0.0.1";
  mkdirSync(options.dataDir, { recursive: true });
  const db = await PGlite.create({ dataDir: options.dataDir });
  const port = options.port && options.port > 0 ? options.port : await findFreePort(host);
  const server = new PGLiteSocketServer({
    db,
    host,
    port,
    maxConnections: options.maxConnections ?? 20,
  });
  await server.start();
  return {
    url: `postgresql://postgres:postgres@${host}:${port}/postgres?sslmode=disable`,
    port,
    dataDir: options.dataDir,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
