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

/** The JSON lines of a server's output (its pino log), less a last line still being written. */
export function logEntries(output: string): Record<string, unknown>[] {
  const entries: Record<string, unknown>[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      entries.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return entries;
}

/**
 * The port the server says it listens on ("zigznote API listening", at LOG_LEVEL info or
 * lower), once it has said so. Start it with PORT=0: no other process can take a port picked in
 * advance between that pick and the server's start.
 */
export async function waitForListening(
  started: StartedProcess,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (started.child.exitCode !== null) {
      throw new Error(`server exited early:\n${started.output()}`);
    }
    const listening = logEntries(started.output()).find(
      (entry) => entry.msg === "zigznote API listening",
    );
    if (typeof listening?.port === "number") return listening.port;
    if (Date.now() > deadline) {
      throw new Error(`server did not listen within ${timeoutMs} ms:\n${started.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits until the server listens (`waitForListening`) and answers /health with 200 there. */
export async function waitForHealth(
  started: StartedProcess,
  timeoutMs: number,
): Promise<{ port: number; health: Response }> {
  const deadline = Date.now() + timeoutMs;
  const port = await waitForListening(started, timeoutMs);
  while (Date.now() < deadline) {
    if (started.child.exitCode !== null) {
      throw new Error(`server exited early:\n${started.output()}`);
    }
    try {
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      if (health.status === 200) return { port, health };
    } catch {
      // not answering yet
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

/** The exit code once the process has exited on its own (an error after `timeoutMs`). */
export async function exitOf(started: StartedProcess, timeoutMs: number): Promise<number | null> {
  if (started.child.exitCode !== null) return started.child.exitCode;
  return new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`still running after ${timeoutMs} ms:\n${started.output()}`)),
      timeoutMs,
    );
    started.child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}
