/**
 * A bench's app servers, each forked from bench/apiServer.ts, and a request/reply channel to
 * them. `children` holds every live one, so a bench's time guard can kill them all.
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import type { ChildMessage, ParentMessage, ServerKind } from "./apiServer";

/** Where the forked servers find their database, and how many connections each opens. */
export interface ServerSettings {
  databaseUrl: string;
  poolSize: number;
}

export const children = new Set<ChildProcess>();

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

/** A forked server and a request/reply channel to it. */
export class ServerProcess {
  private nextId = 1;
  private readonly pending = new Map<number, (message: ChildMessage) => void>();

  private constructor(
    readonly kind: ServerKind,
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on("message", (message: ChildMessage) => {
      if (!("id" in message)) return;
      this.pending.get(message.id)?.(message);
      this.pending.delete(message.id);
    });
  }

  /** `env` is added to this process's environment, less its OTEL_* (tracing only when given). */
  static start(
    kind: ServerKind,
    settings: ServerSettings,
    env: Record<string, string> = {},
  ): Promise<ServerProcess> {
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith("OTEL_")),
    );
    const child = fork(path.join(__dirname, "apiServer.ts"), [kind], {
      cwd: path.resolve(__dirname, ".."),
      execArgv: ["--import", "tsx", "--expose-gc"],
      env: {
        ...inherited,
        ...env,
        NODE_ENV: "production",
        BENCH_DATABASE_URL: settings.databaseUrl,
        BENCH_POOL_SIZE: String(settings.poolSize),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    children.add(child);
    child.once("exit", () => children.delete(child));
    return new Promise((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`${kind} server exited (${code})`)));
      child.once("message", (message: ChildMessage) => {
        if (message.type === "ready") {
          resolve(new ServerProcess(kind, child, `http://127.0.0.1:${message.port}`));
        }
      });
    });
  }

  /**
   * The process's resident memory and the CPU time it has used so far (`afterGc`: after a full
   * collection, with the heap in use then).
   */
  async usage(afterGc = false): Promise<{
    rssBytes: number;
    cpuMicros: number;
    heapUsedBytes?: number;
    heapTotalBytes?: number;
    externalBytes?: number;
  }> {
    const reply = await this.request({ type: "usage", afterGc });
    if (reply.type !== "done" || !reply.usage) throw new Error(`${this.kind} server: no usage`);
    return reply.usage;
  }

  async request(message: WithoutId<ParentMessage>): Promise<ChildMessage> {
    const id = this.nextId++;
    const reply = new Promise<ChildMessage>((resolve) => this.pending.set(id, resolve));
    this.child.send({ ...message, id });
    const answer = await reply;
    if (answer.type === "failed") throw new Error(`${this.kind} server: ${answer.message}`);
    return answer;
  }

  /** Asks the server to stop, and waits for its answer. */
  async close(): Promise<void> {
    await this.request({ type: "close" });
  }
}

/** Stops the bench `name` (and every server it forked) if it still runs after `seconds`. */
export function stopAfter(name: string, seconds: number): void {
  const guard = setTimeout(() => {
    console.error(`${name}: still running after ${seconds} s, stopping`);
    for (const child of children) child.kill("SIGKILL");
    process.exit(1);
  }, seconds * 1000);
  guard.unref();
}
