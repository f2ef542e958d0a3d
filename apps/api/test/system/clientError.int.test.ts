import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startServer, type RunningServer } from "../../src/server";
import { testDatabaseUrl } from "../support/env";
import { quietServerConfig } from "../support/quietServer";

/**
 * What Node's HTTP parser refuses before the app sees a request still answers in the API's error
 * body, through the server `pnpm start` runs (its `clientError` listener).
 */

const storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-client-error-"));
let running: RunningServer;
beforeAll(async () => {
  running = await startServer(quietServerConfig(testDatabaseUrl, storageDir));
}, 60_000);
afterAll(async () => {
  await running.close();
  rmSync(storageDir, { recursive: true, force: true });
});

/** Sends `bytes` on a new connection and reads until the server closes it. */
function exchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(running.port, "127.0.0.1");
    let answer = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => (answer += chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(answer));
    socket.end(bytes);
  });
}

function parse(answer: string): { statusLine: string; headers: string; body: unknown } {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  const [statusLine = "", ...headers] = head.split("\r\n");
  return { statusLine, headers: headers.join("\n"), body: JSON.parse(body) };
}

describe("requests Node's parser refuses", () => {
  it.each([
    [
      "a header value with a control byte",
      "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nIdempotency-Key: a\x7fb\r\n\r\n",
      "HTTP/1.1 400 Bad Request",
      "BAD_REQUEST",
    ],
    [
      "headers larger than 16 KiB",
      `GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Padding: ${"a".repeat(20_000)}\r\n\r\n`,
      "HTTP/1.1 431 Request Header Fields Too Large",
      "REQUEST_HEADERS_TOO_LARGE",
    ],
    ["a request line that is not HTTP", "HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request", "BAD_REQUEST"],
  ])("answers %s in the error body, with a request id", async (_what, bytes, statusLine, code) => {
    const answer = parse(await exchange(bytes));
    expect(answer.statusLine).toBe(statusLine);
    expect(answer.headers).toMatch(/^Content-Type: application\/json; charset=utf-8$/m);
    expect(answer.headers).toMatch(/^Connection: close$/m);
    const requestId = /^X-Request-Id: (\S+)$/m.exec(answer.headers)?.[1];
    expect(answer.body).toEqual({
      error: { code, message: expect.any(String), details: {} },
      requestId,
    });
  });

  it("still serves the next connection", async () => {
    const res = await fetch(`http://127.0.0.1:${running.port}/health`);
    expect(res.status).toBe(200);
  });
});
