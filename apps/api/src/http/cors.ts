import cors from "cors";
import type { RequestHandler } from "express";
import { IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER } from "./idempotency";
import { TRACE_ID_HEADER } from "./traceContext";

/**
 * CORS for the pages of ADMIN_ALLOWED_ORIGINS (a console served from another origin than the
 * API's): their requests, cookie-authenticated included, may be sent and read by the browser,
 * and a JSON write's preflight is answered (204, cached 10 minutes). A request from any other
 * origin passes untouched: no CORS headers, so the browser keeps the answer from that page (and
 * a cookie-authenticated write from it is refused anyway: CSRF_ORIGIN_REFUSED). Null when no
 * origin is listed.
 */
export function allowedOriginsCors(origins: readonly string[]): RequestHandler | null {
  if (origins.length === 0) return null;
  const allowed = new Set(origins);
  const handler = cors({
    // Only ever called for a listed origin (below), which it names back.
    origin: true,
    credentials: true,
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    allowedHeaders: [
      "Authorization",
      "Content-Type",
      IDEMPOTENCY_KEY_HEADER,
      "X-Request-Id",
      "traceparent",
      "tracestate",
    ],
    exposedHeaders: [
      "RateLimit",
      "RateLimit-Policy",
      "Retry-After",
      "X-Request-Id",
      TRACE_ID_HEADER,
      REPLAYED_HEADER,
      "Location",
      "WWW-Authenticate",
      "ETag",
      "Content-Range",
      "Accept-Ranges",
      "Content-Disposition",
    ],
    maxAge: 600,
  });
  return (req, res, next) => {
    const origin = req.get("origin");
    if (origin !== undefined && allowed.has(origin)) handler(req, res, next);
    else next();
  };
}
