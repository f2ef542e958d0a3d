import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { AppError, type ErrorCode } from "@zigznote/shared";
import type { Logger } from "../lib/logger";

/**
 * What Node's HTTP parser refuses before the app sees a request (headers too large, a byte a
 * header may not hold, a request that never finished arriving), as the parser's error codes name
 * it, and how the API answers it.
 */
const REFUSALS: Record<string, { status: number; code: ErrorCode; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: "REQUEST_HEADERS_TOO_LARGE",
    message: "The request's headers are larger than the server reads (16 KiB in all)",
  },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: {
    status: 413,
    code: "PAYLOAD_TOO_LARGE",
    message: "The request's chunk extensions are larger than the server reads",
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: "REQUEST_TIMEOUT",
    message: "The request did not arrive in full in time",
  },
};

const NOT_HTTP = {
  status: 400,
  code: "BAD_REQUEST" as const,
  message: "The request is not valid HTTP/1.1 (a malformed request line or header)",
};

/** The socket's response in progress, where Node keeps it (what its own default answer checks). */
interface SocketWithResponse extends Duplex {
  _httpMessage?: { headersSent?: boolean } | null;
}

/**
 * The server's `clientError` listener: the answer Node would give (400, 408, 413 or 431, then the
 * connection closed), in the API's error body with a request id, instead of an empty one. Like
 * Node's, nothing is written once a response on the connection has begun, or when the client
 * has gone. Logged at info without the request's bytes (they may hold credentials).
 */
export function answerClientError(logger: Logger) {
  return (error: NodeJS.ErrnoException, socket: SocketWithResponse): void => {
    const refusal = REFUSALS[error.code ?? ""] ?? NOT_HTTP;
    const canAnswer =
      error.code !== "ECONNRESET" && socket.writable && !socket._httpMessage?.headersSent;
    if (canAnswer) {
      const requestId = randomUUID();
      const body = JSON.stringify(
        new AppError(refusal.status, refusal.message, { code: refusal.code }).toBody(requestId),
      );
      // Closed once written (Node's own answer is written and the socket destroyed at once).
      socket.end(
        `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? "Error"}\r\n` +
          "Content-Type: application/json; charset=utf-8\r\n" +
          `Content-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Request-Id: ${requestId}\r\n` +
          "Connection: close\r\n\r\n" +
          body,
        () => socket.destroy(),
      );
      logger.info(
        { requestId, status: refusal.status, code: refusal.code, parserError: error.code },
        "request refused before parsing finished",
      );
      return;
    }
    socket.destroy();
  };
}
