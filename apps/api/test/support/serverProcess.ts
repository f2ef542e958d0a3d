import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

/** The built server, as `pnpm start` runs it. */
export const serverEntry = path.resolve(__dirname, "../../dist/server.js");
export const repoRoot = path.resolve(__dirname, "../../../..");

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

export interface StartedProcess {
  child: ChildProcess;
  /** Everything it wrote so far, stdout and stderr. */
  output: () => string;
}

/**
 * The environment of a newcomer's shell: no database or Redis URL, no Clerk, unless `env` sets
 * them (tests may read the process environment: they are not the app).
 */
export function shellEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ["DATABASE_URL", "REDIS_URL", "CLERK_JWT_KEY", "CLERK_SECRET_KEY"]) {
    delete childEnv[name];
  }
  return { ...childEnv, ...env };
}

/** Starts `node <entry> ...args` (the built server by default) with `shellEnv(env)`. */
export function startProcess(
  env: Record<string, string>,
  args: string[] = [serverEntry],
): StartedProcess {
  const child = spawn(process.execPath, args, {
    env: shellEnv(env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

/** The `port` of the process's first JSON log line saying `message` (LOG_LEVEL info), or null. */
export function loggedPort(started: StartedProcess, message: string): number | null {
  for (const line of started.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    let entry: { msg?: unknown; port?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue; // a line still being written
    }
    if (entry.msg === message && typeof entry.port === "number") return entry.port;
  }
  return null;
}

/**
 * Waits until the server says where it listens ("zigznote API listening": start it with PORT=0
 * and LOG_LEVEL=info, so that no other process can take its port between a pick and its start)
 * and answers /health with 200 there: that port and the answer.
 */
export async function waitForHealth(
  started: StartedProcess,
  timeoutMs: number,
): Promise<{ port: number; health: Response }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) {
      throw new Error(`server exited early:\n${started.output()}`);
    }
    const port = loggedPort(started, "zigznote API listening");
    if (port !== null) {
      try {
        const health = await fetch(`http://127.0.0.1:${port}/health`);
        if (health.status === 200) return { port, health };
      } catch {
        // not answering yet
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`server not healthy within ${timeoutMs} ms:\n${started.output()}`);
}

/** SIGTERM, then the exit code. */
export async function stopProcess(started: StartedProcess): Promise<number | null> {
  if (started.child.exitCode !== null) return started.child.exitCode;
  const exited = new Promise<number | null>((resolve) =>
    started.child.once("exit", (code) => resolve(code)),
  );
  started.child.kill("SIGTERM");
  return exited;
}
