import net from "node:net";

/**
 * A TCP proxy in the test process, for a database that stops answering: while paused it keeps
 * every connection open and accepts new ones, but holds the bytes of both directions (as a
 * stalled server or a black-holed network would); `resume()` delivers them in order.
 */
export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /**
   * Holds every byte from now on. A connection its client closes while paused loses what it had
   * sent, as when the network drops it; with `deliverAbandoned`, `resume()` still delivers that
   * to the server before closing the server's side, as bytes already in flight would arrive after
   * the client gave up.
   */
  pause(options?: { deliverAbandoned?: boolean }): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let isPaused = false;
  let deliversAbandoned = false;
  const held: Array<() => void> = [];
  const sockets = new Set<net.Socket>();

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on("data", (chunk: Buffer) => {
      if (isPaused) held.push(() => to.write(chunk));
      else to.write(chunk);
    });
  };

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    forward(client, upstream);
    forward(upstream, client);
    client.on("close", () => {
      // After the bytes held before it: the server reads them, then the end of the connection.
      if (isPaused && deliversAbandoned) held.push(() => upstream.end());
      else upstream.destroy();
    });
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    urlFor(url) {
      const proxied = new URL(url);
      proxied.hostname = "127.0.0.1";
      proxied.port = String(port);
      return proxied.toString();
    },
    pause(options = {}) {
      isPaused = true;
      deliversAbandoned = options.deliverAbandoned ?? false;
    },
    resume() {
      isPaused = false;
      deliversAbandoned = false;
      for (const deliver of held.splice(0)) deliver();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
