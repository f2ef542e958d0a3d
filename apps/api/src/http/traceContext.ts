import type { NextFunction, Request, RequestHandler, Response } from "express";
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from "@opentelemetry/semantic-conventions";
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  trace,
  type Attributes,
} from "@opentelemetry/api";
import { redactText } from "../lib/spanSanitizer";
import { isTracingOn, SpanKind, SpanStatusCode, startSpan, type Span } from "../lib/tracing";
import type { RouteResolver } from "./routeTemplate";

/** The response header naming the trace of a request (beside X-Request-Id). */
export const TRACE_ID_HEADER = "Trace-Id";

/** Paths polled by probes and scrapers: not traced (they would drown the traces that matter). */
const UNTRACED_PATHS = new Set(["/health", "/metrics"]);

/**
 * What the HTTP semantic conventions say of a request served (none of its query or body). The
 * path is the caller's: one who puts an API key where its id goes (`DELETE /api-keys/zn_...`), a
 * session token or an address (`/members/ada%40example.com`) would have it recorded, so it is
 * recorded with those replaced (`redactText`; most paths are passed on after one scan).
 */
function requestAttributes(req: Request): Attributes {
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: req.method,
    [ATTR_URL_PATH]: redactText(req.path),
    [ATTR_URL_SCHEME]: req.protocol,
    [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
  };
  if (req.ip) attributes[ATTR_CLIENT_ADDRESS] = req.ip;
  const userAgent = req.headers["user-agent"];
  if (userAgent) attributes[ATTR_USER_AGENT_ORIGINAL] = userAgent;
  return attributes;
}

/** Names the span by its route, records the status (an error for a 5xx or a cut connection). */
function endServerSpan(span: Span, req: Request, res: Response, route: string): void {
  span.updateName(`${req.method} ${route}`);
  span.setAttribute(ATTR_HTTP_ROUTE, route);
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
  if (res.statusCode >= 500) {
    span.setStatus({ code: SpanStatusCode.ERROR });
  } else if (res.socket !== null) {
    // Node detaches the socket once the answer is handed over ("finish"); still attached, it
    // closed first. Also when an answer was ended after the client left (the body parser failing
    // on the abort, say), which `writableFinished` counts as sent.
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: "connection closed before the response ended",
    });
  }
  span.end();
}

/**
 * Each request's server span, when tracing is on: it continues an incoming W3C `traceparent`
 * (through the registered propagators; an incoming `baggage` is dropped), is named by the request's route template (`GET
 * /api/v1/meetings/:id`, the same template logs and metrics use, never the raw path), carries
 * the HTTP semantic conventions' attributes (method, path, scheme, protocol, client address,
 * user agent, status, route; never a query string, header value or body beyond these), and is
 * an error for a 5xx. The rest of the request runs in its context, so database, Redis and
 * outgoing HTTP spans are its children and log lines carry its ids; the response carries
 * `Trace-Id` (what a client quotes to support, as it quotes X-Request-Id), also when the trace
 * is not sampled.
 *
 * Made here rather than by the http instrumentation's incoming-request hook (which
 * `tracingSdk.ts` turns off; it still makes the outgoing spans): that hook patches the server's
 * `emit` and rebinds every listener of each request and response to the request's context,
 * which cost about 70% more CPU per request on `GET /api/v1/me` (PERFORMANCE.md). The context is
 * carried by async-local storage alone: through every await, and through the body parsers,
 * whose reader (raw-body) calls back in the context it was called in, so a body that arrives
 * after the headers keeps the request's trace (a test sends one).
 *
 * With tracing off (no OTLP endpoint): one check, then `next()`.
 */
export function traceContext(routeOf: RouteResolver): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    if (!isTracingOn() || UNTRACED_PATHS.has(req.path)) {
      next();
      return;
    }
    // A caller's baggage is not ours to pass on: every outgoing call (Recall, Stripe, Clerk, S3)
    // would carry what a client put in it. Its traceparent is continued.
    const parent = propagation.deleteBaggage(propagation.extract(ROOT_CONTEXT, req.headers));
    const span = startSpan(req.method, { kind: SpanKind.SERVER }, parent);
    const spanContext = span.spanContext();
    // Also when the trace is not sampled: the id still joins the caller's logs to ours.
    if (isSpanContextValid(spanContext)) res.setHeader(TRACE_ID_HEADER, spanContext.traceId);
    // A trace not sampled records nothing: its span needs no attributes and no end.
    if (span.isRecording()) {
      span.setAttributes(requestAttributes(req));
      // "close" follows "finish", and comes alone when the client went away first.
      res.once("close", () => endServerSpan(span, req, res, routeOf(req)));
    }
    context.with(trace.setSpan(parent, span), next);
  };
}
