import type { IncomingMessage, ServerResponse } from "node:http";
import type { RequestHandler } from "express";
import helmet from "helmet";

/**
 * Helmet's default security headers, worked out once at start-up and then set on every response
 * in one loop, instead of helmet's chain of a dozen middlewares per request. The policy is still
 * helmet's own: its middleware is run once against a probe response that records what it sets
 * and removes. Helmet's defaults depend on nothing in the request (no CSP nonces), which is what
 * makes them a constant.
 */
export function securityHeaders(): RequestHandler {
  const headers: [string, string][] = [];
  const removed: string[] = [];
  const probe = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name, String(value)]);
      return probe;
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  let isDone = false;
  helmet()({} as IncomingMessage, probe as unknown as ServerResponse, () => {
    isDone = true;
  });
  // Helmet answers synchronously; anything else would mean the probe saw only part of it.
  if (!isDone) throw new Error("helmet did not finish synchronously");
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}
