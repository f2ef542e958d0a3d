import { mkdirSync } from "node:fs";
import { open, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { EmbeddedSessionServer } from "./embeddedServer";

export interface EmbeddedPostgres {
  /** postgresql:// URL of the embedded server, for Prisma and migrations. */
  url: string;
  port: number;
  dataDir: string;
  /** False when another process serves the folder and this one only connects to it. */
  isOwner: boolean;
  /** Stops the server this process started (nothing for one it only connected to). */
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  /** Folder that keeps the data between starts (created if missing). */
  dataDir: string;
  /** Port to listen on; 0 picks a free one. */
  port?: number;
  /** Ports a free one must not be: the caller's own, which it listens on once this is started. */
  avoidPorts?: readonly number[];
  host?: string;
  /**
   * When another process already serves `dataDir`: connect to its server (true: tools that run
   * beside the API) or refuse with EmbeddedDatabaseInUseError (false, the default).
   */
  shareRunning?: boolean;
  /** Told about failures inside PGlite (the connection that met one is closed). */
  onError?: (error: unknown) => void;
}

/** The data folder is served by another live process (PGlite cannot open it twice). */
export class EmbeddedDatabaseInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly url: string | null,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}` +
        (url ? ` (serving ${url})` : " (starting)") +
        `: stop that process first, or set DATABASE_URL to use another database`,
    );
    this.name = "EmbeddedDatabaseInUseError";
  }
}

/** Who serves a data folder: written by the serving process, removed when it stops. */
interface ServerFile {
  pid: number;
  url: string | null;
}

const SERVER_FILE = "zigznote-server.json";
/** How long a tool waits for a server that is still starting to announce its URL. */
const STARTING_WAIT_MS = 60_000;

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The server files this process holds (a folder it serves or is starting to serve). */
const heldHere = new Set<string>();

/**
 * Whether the process a server file names still holds it. A file naming this very process that
 * this process does not hold was left by an earlier process with the same pid: in a container
 * the server is PID 1 at every start, and a start killed before it stopped left its file.
 */
function isHolderAlive(pid: number, file: string): boolean {
  if (pid === process.pid) return heldHere.has(file);
  return isProcessAlive(pid);
}

function canConnect(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function readServerFile(file: string): Promise<ServerFile | null> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as ServerFile;
  } catch {
    return null;
  }
}

/** The live server of `file`, or null when there is none (a stale file is removed). */
async function findLiveServer(file: string): Promise<ServerFile | null> {
  const holder = await readServerFile(file);
  if (
    holder &&
    isHolderAlive(holder.pid, file) &&
    (holder.url === null || (await canConnect(holder.url)))
  ) {
    return holder;
  }
  await rm(file, { force: true });
  return null;
}

/** Claims `file` for this process (atomically); the live holder when another has it. */
async function claimServerFile(file: string): Promise<ServerFile | null> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(JSON.stringify({ pid: process.pid, url: null } satisfies ServerFile));
      await handle.close();
      heldHere.add(file);
      return null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = await findLiveServer(file);
      if (holder) return holder;
    }
  }
  throw new Error(`could not claim ${file}`);
}

async function waitForUrl(file: string, holder: ServerFile): Promise<ServerFile> {
  const deadline = Date.now() + STARTING_WAIT_MS;
  let current: ServerFile | null = holder;
  while (current && current.url === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    current = await readServerFile(file);
  }
  return current ?? holder;
}

/**
 * PostgreSQL compiled to WASM (PGlite), persisted in `dataDir` and served on a local port over
 * the wire protocol, so the same pg/Prisma code runs without a database server. Every
 * connection's batches and transactions run whole, one after another (embeddedServer.ts): it is
 * correct under the API's concurrency, and as fast as one backend is. Meant for a zero-setup
 * start, demos and trying things out, not for production load.
 *
 * One process serves a folder at a time; it says so in `zigznote-server.json` in the folder, and
 * tools started beside it connect to its server instead (`shareRunning`).
 */
export async function startEmbeddedPostgres(
  options: StartEmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const host = options.host ?? "127.0.0.1";
  const dataDir = path.resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, SERVER_FILE);
  const holder = await claimServerFile(file);
  if (holder) {
    const running = options.shareRunning ? await waitForUrl(file, holder) : holder;
    if (!options.shareRunning || running.url === null) {
      throw new EmbeddedDatabaseInUseError(dataDir, running.pid, running.url);
    }
    return {
      url: running.url,
      port: Number(new URL(running.url).port),
      dataDir,
      isOwner: false,
      async stop() {},
    };
  }

  let db: PGlite | undefined;
  try {
    db = await PGlite.create({ dataDir });
    const server = new EmbeddedSessionServer({
      db,
      host,
      port: options.port ?? 0,
      avoidPorts: options.avoidPorts,
      onError: options.onError,
    });
    await server.start();
    const url = `postgresql://postgres:postgres@${host}:${server.port}/postgres?sslmode=disable`;
    await writeFile(file, JSON.stringify({ pid: process.pid, url } satisfies ServerFile));
    const opened = db;
    return {
      url,
      port: server.port,
      dataDir,
      isOwner: true,
      async stop() {
        await server.stop();
        await opened.close();
        await rm(file, { force: true });
        heldHere.delete(file);
      },
    };
  } catch (error) {
    await db?.close().catch(() => undefined);
    await rm(file, { force: true });
    heldHere.delete(file);
    throw error;
  }
}
