import type { IncomingMessage, ServerResponse } from "node:http";

/** A programmed failure that sends no answer: never answer (`hang`) or drop the connection (`reset`). */
export type SilentFailure = { hang: true } | { reset: true };

/**
 * Carries out `failure` if it is a silent one: parks the response in `hanging` (the fake's close
 * ends it) or destroys the socket. False for a failure that answers with a status instead.
 */
export function failSilently(
  failure: SilentFailure | { status: number },
  req: IncomingMessage,
  res: ServerResponse,
  hanging: Set<ServerResponse>,
): failure is SilentFailure {
  if ("hang" in failure) {
    hanging.add(res);
    return true;
  }
  if ("reset" in failure) {
    req.socket.destroy();
    return true;
  }
  return false;
}
