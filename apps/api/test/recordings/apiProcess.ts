import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";

/** The built API (`node dist/server.js`) as a process of its own, as an operator runs it. */

const serverEntry = path.resolve(__dirname, "../../dist/server.js");

export interface ApiProcess {
  child: ChildProcess;
  port: number;
  url: string;
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (a crash: no shutdown of any kind), then its exit signal. */
  kill(): Promise<NodeJS.Signals | null>;
}

/**
 * Starts an API process with `env` on top of this process's PATH and the like (never its
 * database or storage settings), on a free port of 127.0.0.1, and waits until it listens.
 */
export async function startApiProcess(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<ApiProcess> {
  const base: NodeJS.ProcessEnv = {};
  for (const name of ["PATH", "HOME", "TMPDIR", "LANG"]) {
    if (process.env[name] !== undefined) base[name] = process.env[name];
  }
  const child = spawn(process.execPath, [serverEntry], {
    env: {
      ...base,
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: "0",
      LOG_LEVEL: "info",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the API did not listen within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = () => {
      for (const line of output.split("\n")) {
        if (!line.includes('"zigznote API listening"')) continue;
        clearTimeout(timer);
        child.stdout.off("data", onData);
        resolve((JSON.parse(line) as { port: number }).port);
        return;
      }
    };
    child.stdout.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the API exited (${code}) before listening:\n${output}`));
    });
  });

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return (await exited).code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      return (await exited).signal;
    },
  };
}
