import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * Listens on a free local port, keeping each open connection in `sockets` so that closing the
 * fake can end them (a keep-alive connection would otherwise hold `server.close` open).
 */
export async function listenLocally(server: Server, sockets: Set<Socket>): Promise<string> {
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}
