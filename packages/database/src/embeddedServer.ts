/**
 * The embedded database's wire-protocol front: any number of client connections over one PGlite
 * session, without their messages ever mixing.
 *
 * PGlite is a single PostgreSQL backend: one session, whose unnamed prepared statement, unnamed
 * portal and open transaction belong to whoever sent the last message. Handing it messages one
 * at a time from several connections (as @electric-sql/pglite-socket 0.2 does outside a
 * transaction) interleaves two clients' Parse/Bind/Execute/Sync batches, and the backend answers
 * "bind message supplies 4 parameters, but prepared statement "" requires 3" or
 * "portal "" does not exist"; one internal throw then stops its queue for good.
 *
 * The contract here:
 * - A connection owns the session from the first message it sends until the backend answers
 *   ReadyForQuery with status idle ('I'). An extended-protocol batch and a whole transaction
 *   therefore run with no other connection's message in between.
 * - Other connections wait their turn in arrival order; their messages are kept, never dropped.
 * - A connection that goes away while owning the session (mid-batch or mid-transaction) has its
 *   batch ended (Sync) and its transaction rolled back before anyone else runs.
 * - A failure inside PGlite ends that connection only, and the session is reset and released.
 *
 * State that lives in a session rather than a transaction (SET, named prepared statements,
 * session-level advisory locks, temporary tables) is shared by every connection. The API uses
 * transaction-scoped locks only, and its one kind of named statement (statementBatch.ts) names
 * one text per name in the process and is closed and parsed again by each connection before its
 * first use there, so connections sharing the session meet the same statements.
 */
import net from "node:net";
import type { PGlite } from "@electric-sql/pglite";

const SSL_REQUEST_CODE = 80877103;
const GSSENC_REQUEST_CODE = 80877104;
const CANCEL_REQUEST_CODE = 80877102;
/** A Sync message: ends an extended-protocol batch, answered by ReadyForQuery. */
const SYNC_MESSAGE = new Uint8Array([0x53, 0, 0, 0, 4]);
const READY_FOR_QUERY = 0x5a; // 'Z'
const TERMINATE = 0x58; // 'X'
const IDLE = 0x49; // 'I'

interface Connection {
  readonly id: number;
  readonly socket: net.Socket;
  /** Bytes received and not yet framed into whole messages. */
  buffer: Buffer;
  /** Whole messages waiting for the session, oldest first. */
  readonly queue: Uint8Array[];
  isStarted: boolean;
  isClosed: boolean;
}

export interface EmbeddedSessionServerOptions {
  db: PGlite;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Ports a free one must not be (with `port` 0): ones this process is about to listen on itself,
   * such as the API's own, which the kernel may hand out while they are still free.
   */
  avoidPorts?: readonly number[];
  /** Told about failures inside PGlite (the connection that met one is closed). */
  onError?: (error: unknown) => void;
}

/** A listener opened on some port, and how to close it. */
export interface OpenedListener {
  port: number;
  close(): Promise<void>;
}

/** How many listeners `listenAvoiding` opens before it gives up. */
const LISTEN_ATTEMPTS = 5;

/**
 * Opens a listener with `open` (on a port the kernel picks) until its port is not one of `avoid`,
 * closing each one that is; throws after `LISTEN_ATTEMPTS` picks that all were.
 */
export async function listenAvoiding<T extends OpenedListener>(
  open: () => Promise<T>,
  avoid: readonly number[],
): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const listener = await open();
    if (!avoid.includes(listener.port)) return listener;
    await listener.close();
    if (attempt === LISTEN_ATTEMPTS) {
      throw new Error(
        `the embedded database was given a reserved port (${listener.port}) ${attempt} times`,
      );
    }
  }
}

/** The status byte of the last ReadyForQuery in a backend output, or null when it has none. */
export function lastReadyStatus(output: Uint8Array): number | null {
  let status: number | null = null;
  let offset = 0;
  while (offset + 5 <= output.length) {
    const type = output[offset]!;
    const length =
      ((output[offset + 1]! << 24) |
        (output[offset + 2]! << 16) |
        (output[offset + 3]! << 8) |
        output[offset + 4]!) >>>
      0;
    if (type === READY_FOR_QUERY && length === 5 && offset + 5 < output.length) {
      status = output[offset + 5]!;
    }
    offset += 1 + length;
  }
  return status;
}

/** A Query message (simple protocol) for `sql`. */
function queryMessage(sql: string): Uint8Array {
  const text = Buffer.from(`${sql}\0`, "utf8");
  const message = Buffer.alloc(5 + text.length);
  message.write("Q", 0, "latin1");
  message.writeInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
}

export class EmbeddedSessionServer {
  readonly #db: PGlite;
  readonly #host: string;
  readonly #requestedPort: number;
  readonly #avoidPorts: readonly number[];
  readonly #onError: (error: unknown) => void;
  readonly #connections = new Set<Connection>();
  /** Connections with messages waiting, in the order they asked; never the owner. */
  readonly #waiting: Connection[] = [];
  #server: net.Server | null = null;
  #owner: Connection | null = null;
  #pumping: Promise<void> | null = null;
  #nextId = 1;
  #port = 0;

  constructor(options: EmbeddedSessionServerOptions) {
    this.#db = options.db;
    this.#host = options.host;
    this.#requestedPort = options.port;
    this.#avoidPorts = options.port === 0 ? (options.avoidPorts ?? []) : [];
    this.#onError = options.onError ?? (() => undefined);
  }

  /** The port it listens on (after `start`). */
  get port(): number {
    return this.#port;
  }

  async start(): Promise<void> {
    await this.#db.waitReady;
    const { server, port } = await listenAvoiding(() => this.#listen(), this.#avoidPorts);
    this.#port = port;
    this.#server = server;
  }

  /** A listener on the requested port, or on one the kernel picks. */
  async #listen(): Promise<OpenedListener & { server: net.Server }> {
    const server = net.createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#requestedPort, this.#host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    return {
      server,
      port: address && typeof address === "object" ? address.port : this.#requestedPort,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  /** Stops listening, closes every connection and waits for the message in progress. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    const closed = server
      ? new Promise<void>((resolve) => server.close(() => resolve()))
      : Promise.resolve();
    for (const connection of this.#connections) connection.socket.destroy();
    await closed;
    while (this.#pumping) await this.#pumping;
  }

  #accept(socket: net.Socket): void {
    const connection: Connection = {
      id: this.#nextId++,
      socket,
      buffer: Buffer.alloc(0),
      queue: [],
      isStarted: false,
      isClosed: false,
    };
    this.#connections.add(connection);
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => this.#receive(connection, data));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => this.#close(connection));
  }

  #receive(connection: Connection, data: Buffer): void {
    if (connection.isClosed) return;
    connection.buffer =
      connection.buffer.length === 0 ? data : Buffer.concat([connection.buffer, data]);
    let hasNewMessages = false;
    for (;;) {
      const message = this.#frame(connection);
      if (!message) break;
      if (message.length > 0) {
        connection.queue.push(message);
        hasNewMessages = true;
      }
      if (connection.isClosed) return;
    }
    if (hasNewMessages) {
      if (connection !== this.#owner && !this.#waiting.includes(connection)) {
        this.#waiting.push(connection);
      }
      this.#pump();
    }
  }

  /**
   * The next whole message of `connection` (removed from its buffer), an empty array for one
   * answered here without the session (SSL and GSS encryption requests), or null when the
   * buffer holds no whole message yet.
   */
  #frame(connection: Connection): Uint8Array | null {
    const buffer = connection.buffer;
    if (!connection.isStarted) {
      if (buffer.length < 8) return null;
      const length = buffer.readInt32BE(0);
      if (buffer.length < length) return null;
      const code = buffer.readInt32BE(4);
      connection.buffer = buffer.subarray(length);
      if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
        connection.socket.write("N"); // not supported: the client goes on unencrypted
        return new Uint8Array(0);
      }
      if (code === CANCEL_REQUEST_CODE) {
        // One backend and no process to signal: a cancel request is acknowledged by closing.
        connection.socket.destroy();
        return new Uint8Array(0);
      }
      connection.isStarted = true;
      return new Uint8Array(buffer.subarray(0, length));
    }
    if (buffer.length < 5) return null;
    const length = 1 + buffer.readInt32BE(1);
    if (buffer.length < length) return null;
    connection.buffer = buffer.subarray(length);
    if (buffer[0] === TERMINATE) {
      connection.socket.end();
      return new Uint8Array(0);
    }
    return new Uint8Array(buffer.subarray(0, length));
  }

  #close(connection: Connection): void {
    if (connection.isClosed) return;
    connection.isClosed = true;
    connection.queue.length = 0;
    this.#connections.delete(connection);
    const index = this.#waiting.indexOf(connection);
    if (index >= 0) this.#waiting.splice(index, 1);
    // An owner that left mid-batch or mid-transaction is reset by the pump.
    if (connection === this.#owner) this.#pump();
  }

  /** Runs waiting messages one at a time until nobody can go on; one pump at a time. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = this.#drain().finally(() => {
      this.#pumping = null;
      // Messages that arrived while the last one finished.
      if (this.#hasWork()) this.#pump();
    });
  }

  #hasWork(): boolean {
    const owner = this.#owner;
    if (owner) return owner.isClosed || owner.queue.length > 0;
    return this.#waiting.length > 0;
  }

  async #drain(): Promise<void> {
    for (;;) {
      let owner = this.#owner;
      if (!owner) {
        owner = this.#waiting.shift() ?? null;
        if (!owner) return;
        this.#owner = owner;
      }
      if (owner.isClosed) {
        await this.#resetSession();
        this.#owner = null;
        continue;
      }
      // The owner holds the session (mid-batch or in a transaction) and has sent nothing yet.
      if (owner.queue.length === 0) return;
      // Everything it has sent so far in one call: a Parse/Bind/Describe/Execute/Sync batch
      // costs one trip into PGlite rather than five.
      const messages = owner.queue.splice(0, owner.queue.length);
      const message = messages.length === 1 ? messages[0]! : Buffer.concat(messages);
      const status = await this.#execute(owner, message);
      if (status === IDLE) {
        this.#owner = null;
        if (owner.queue.length > 0 && !owner.isClosed) this.#waiting.push(owner);
      }
    }
  }

  /** Runs one message for `connection` and sends it the answer; the last ReadyForQuery status. */
  async #execute(connection: Connection, message: Uint8Array): Promise<number | null> {
    let output: Uint8Array;
    try {
      output = await this.#db.runExclusive(() => this.#db.execProtocolRaw(message));
    } catch (error) {
      this.#onError(error);
      connection.socket.destroy();
      this.#close(connection);
      return null;
    }
    if (!connection.isClosed && output.length > 0) connection.socket.write(output);
    return lastReadyStatus(output);
  }

  /** Ends a batch left open and rolls back a transaction left open, so the session is idle. */
  async #resetSession(): Promise<void> {
    try {
      await this.#db.runExclusive(async () => {
        const status = lastReadyStatus(await this.#db.execProtocolRaw(SYNC_MESSAGE));
        if (status !== IDLE) await this.#db.execProtocolRaw(queryMessage("ROLLBACK"));
      });
    } catch (error) {
      this.#onError(error);
    }
  }
}
