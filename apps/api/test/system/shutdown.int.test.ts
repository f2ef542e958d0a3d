import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  createMeeting,
  createMembership,
  createOrganization,
  createUser,
  uniqueSuffix,
} from "@zigznote/database/testing";
import { loadConfig } from "../../src/config";
import { startServer, type RunningServer } from "../../src/server";
import { clerkTestEnv, signClerkToken } from "../support/auth";
import { testDatabaseUrl } from "../support/env";

/**
 * Shutdown lets go of keep-alive connections: idle ones close at once, in-flight responses carry
 * `Connection: close` (or their socket is closed after them), and `close()` resolves as soon as
 * they are done. SHUTDOWN_TIMEOUT_MS is far above the test timeout: waiting for it fails.
 */

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** One keep-alive HTTP/1.1 connection, spoken by hand so the test sees exactly what the server does. */
class KeepAliveConnection {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  private received = Buffer.alloc(0);
  private onData: (() => void) | undefined;

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.on("error", () => undefined); // a write after the server closed: seen as `closed`
    this.socket.on("data", (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.onData?.();
    });
    this.closed = new Promise((resolve) =>
      this.socket.once("close", () => {
        resolve();
        this.onData?.();
      }),
    );
  }

  send(head: string, body?: Buffer): void {
    this.socket.write(`${head}\r\nHost: 127.0.0.1\r\n\r\n`);
    if (body) this.socket.write(body);
  }

  /** Resolves with the next response once its head is in (the body may still be arriving). */
  async head(): Promise<{
    status: number;
    headers: Record<string, string>;
    rest: () => Promise<Buffer>;
  }> {
    const end = await this.waitFor(() => this.received.indexOf("\r\n\r\n"));
    const [statusLine, ...lines] = this.received.subarray(0, end).toString("latin1").split("\r\n");
    this.received = this.received.subarray(end + 4);
    const headers = Object.fromEntries(
      lines.map((line) => {
        const colon = line.indexOf(":");
        return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()];
      }),
    );
    const length = Number(headers["content-length"]);
    return {
      status: Number(statusLine!.split(" ")[1]),
      headers,
      rest: async () => {
        await this.waitFor(() => (this.received.length >= length ? 0 : -1));
        const body = this.received.subarray(0, length);
        this.received = this.received.subarray(length);
        return body;
      },
    };
  }

  async response(): Promise<RawResponse> {
    const { status, headers, rest } = await this.head();
    return { status, headers, body: await rest() };
  }

  private async waitFor(found: () => number): Promise<number> {
    for (;;) {
      const at = found();
      if (at >= 0) return at;
      if (this.socket.destroyed) throw new Error("connection closed before the response");
      await new Promise<void>((resolve) => (this.onData = resolve));
    }
  }
}

describe("close() (SIGTERM) with keep-alive connections", () => {
  let running: RunningServer;
  let storageDir: string;
  let isClosed = false;
  let authorization: string;
  let meetingId: string;

  beforeEach(async () => {
    storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-shutdown-"));
    isClosed = false;
    running = await startServer(
      loadConfig({
        DATABASE_URL: testDatabaseUrl,
        HOST: "127.0.0.1",
        PORT: "0",
        LOG_LEVEL: "silent",
        JOBS_ENABLED: "false",
        STORAGE_DIR: storageDir,
        SHUTDOWN_TIMEOUT_MS: "60000",
        REDIS_KEY_PREFIX: `test-${uniqueSuffix()}`,
        ...clerkTestEnv(),
      }),
    );
    const db = running.ctx.db;
    const organization = await createOrganization(db);
    const user = await createUser(db);
    await createMembership(db, { organizationId: organization.id, userId: user.id, role: "admin" });
    const token = signClerkToken({ userId: user.clerkId, orgId: organization.clerkId! });
    authorization = `Authorization: Bearer ${token}`;
    meetingId = (await createMeeting(db, { organizationId: organization.id })).id;
  });
  afterEach(async () => {
    if (!isClosed) running.server.closeAllConnections();
    await running.close();
    rmSync(storageDir, { recursive: true, force: true });
  });

  const upload = (length: number) =>
    [
      `PUT /api/v1/meetings/${meetingId}/recording HTTP/1.1`,
      authorization,
      "Content-Type: audio/mpeg",
      `Content-Length: ${length}`,
    ].join("\r\n");

  it("closes idle connections at once, ends an upload in flight with Connection: close, and resolves without the timeout", async () => {
    const idle = new KeepAliveConnection(running.port);
    idle.send(`GET /api/v1/meetings HTTP/1.1\r\n${authorization}`);
    const listed = await idle.response();
    expect(listed.status).toBe(200);
    expect(listed.headers.connection).toBe("keep-alive");

    // A slow upload: its head and first half are in when shutdown starts.
    const uploading = new KeepAliveConnection(running.port);
    const requested = once(running.server, "request");
    uploading.send(upload(2048), Buffer.alloc(1024, 1));
    await requested;

    const closing = running.close().then(() => (isClosed = true));
    await idle.closed;

    uploading.socket.write(Buffer.alloc(1024, 2));
    const stored = await uploading.response();
    expect(stored.status).toBe(201);
    expect(stored.headers.connection).toBe("close");
    await uploading.closed;
    await closing;
  });

  it("closes a connection after a response whose headers went out before shutdown", async () => {
    // A recording large enough that its download is still streaming while the reader pauses.
    const size = 16 * 1024 * 1024;
    const uploading = new KeepAliveConnection(running.port);
    uploading.send(upload(size), Buffer.alloc(size, 3));
    expect((await uploading.response()).status).toBe(201);

    const downloading = new KeepAliveConnection(running.port);
    downloading.send(`GET /api/v1/meetings/${meetingId}/recording HTTP/1.1\r\n${authorization}`);
    const { status, headers, rest } = await downloading.head();
    expect(status).toBe(200);
    expect(headers.connection).toBe("keep-alive");
    downloading.socket.pause();

    const closing = running.close().then(() => (isClosed = true));
    await uploading.closed; // idle since its answer
    downloading.socket.resume();
    expect((await rest()).length).toBe(size);
    // As a polling client does: ask again on the same connection. The server has closed it, or
    // (if the request crossed the close) answers it with Connection: close; never keep-alive.
    downloading.send(`GET /api/v1/meetings HTTP/1.1\r\n${authorization}`);
    const next = await downloading.response().catch(() => null);
    if (next) expect(next.headers.connection).toBe("close");
    await downloading.closed;
    await closing;
  });
});
