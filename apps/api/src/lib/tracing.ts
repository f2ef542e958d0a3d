import {
  context,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from "@opentelemetry/api";
import { API_VERSION } from "../version";

/**
 * Spans of the API's own work (job runs, webhook claims and handlers, notice deliveries, calls to
 * Recall and the SMTP server), through the OpenTelemetry API only. While no SDK is registered
 * (no OTLP endpoint: `instrument.ts`), the API's tracer is a no-op: a span costs a function call.
 * The SDK, the exporters and the library instrumentations are in `tracingSdk.ts`.
 *
 * What a span may carry: ids (organization, notice, event, bot, job run), names, counts and
 * outcomes. Never an e-mail address, a token or secret, a body, or a query string: the exporter
 * also scrubs these (`spanSanitizer.ts`), as a last line of defence, not as the plan.
 */

const tracer = trace.getTracer("zigznote-api", API_VERSION);

export { SpanKind, SpanStatusCode };
export type { Attributes, Span };

let isStarted = false;

/** Called by `tracingSdk.ts` once its tracer provider is registered (and again when it stops). */
export function setTracingOn(isOn: boolean): void {
  isStarted = isOn;
}

/** Whether this process traces (an SDK is registered): what the request hook checks first. */
export function isTracingOn(): boolean {
  return isStarted;
}

/**
 * `listener`, made to run in the context active here (the request's) wherever it is called
 * from: a response's "close" when the client went away is emitted by its socket, outside the
 * request's context, and a log line written then would lose the trace. As is when tracing is off.
 */
export function bindToActiveContext<F extends (...args: never[]) => unknown>(listener: F): F {
  return isStarted ? context.bind(context.active(), listener) : listener;
}

/** Starts a span that is not made active (the caller runs its work in its context itself). */
export function startSpan(name: string, options: SpanOptions, parent: Context): Span {
  return tracer.startSpan(name, options, parent);
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
}

/**
 * Runs `work` inside a new span (the active one while it runs, so database and HTTP spans
 * below it are its children) and ends it. A throw marks the span as an error, with the
 * exception recorded, and is rethrown.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, options, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      markSpanFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Records `error` on `span` and sets its status to error (the message only, never a body). */
export function markSpanFailed(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  if (error instanceof Error) span.recordException(error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

/** The span active here (the request's, a job's, ...), or undefined when nothing is traced. */
export function activeSpan(): Span | undefined {
  return trace.getSpan(context.active());
}

/** The ids of the trace active here, for a log line; null when nothing is traced. */
export function activeTraceIds(): { traceId: string; spanId: string } | null {
  const span = trace.getSpan(context.active());
  if (span === undefined) return null;
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return null;
  return { traceId: spanContext.traceId, spanId: spanContext.spanId };
}

/**
 * pino's `mixin`: every log line written inside a traced request, job run or delivery carries
 * its `traceId` and `spanId`. Called only for lines that are written; pino merges the line's
 * own fields into the object returned, so it is a new one each time.
 */
export function traceLogFields(): Record<string, string> {
  return activeTraceIds() ?? {};
}
