import { hostname } from "node:os";
import { getKeyIndexes } from "@ioredis/commands";
import {
  context,
  diag,
  DiagLogLevel,
  propagation,
  trace,
  type DiagLogger,
  type TextMapPropagator,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  CompositePropagator,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpJsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OtlpProtobufExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { registerInstrumentations, type Instrumentation } from "@opentelemetry/instrumentation";
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http";
import { IORedisInstrumentation } from "@opentelemetry/instrumentation-ioredis";
import { PgInstrumentation } from "@opentelemetry/instrumentation-pg";
import { UndiciInstrumentation } from "@opentelemetry/instrumentation-undici";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace";
import { API_VERSION } from "../version";
import { setTracingOn } from "./tracing";
import { SanitizingSpanExporter } from "./spanSanitizer";
import type { InstrumentationName, SamplerName, TracingSettings } from "./tracingConfig";

/**
 * The OpenTelemetry SDK of one process: a tracer provider exporting over OTLP/HTTP (protobuf or
 * JSON), the W3C propagators, the async-local-storage context, and the instrumentations of the
 * libraries the API talks through:
 * - http: every call made with `http`/`https` (Stripe's SDK; its host is in the span, its
 *   Authorization header is not). The server span of each request served is made by
 *   `http/traceContext.ts` (continuing an incoming `traceparent`, named by route template);
 * - undici: `fetch` (Recall, Clerk's keys);
 * - pg: each statement (Prisma's driver adapter and the plain SQL both run on pg), as its
 *   parameterized text: values are never recorded;
 * - ioredis: each command, by name and keys (never another argument: values, AUTH's password).
 * Tracing is process-wide by nature (the instrumentations patch modules): this is started once,
 * by `instrument.ts`, before those modules are loaded.
 */

/** Where the SDK's own warnings go (the app's logger). */
export interface TracingProblemLogger {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface Tracing {
  settings: TracingSettings;
  /**
   * Sends the SDK's own warnings (an unreachable OTLP receiver, a module loaded before its
   * instrumentation) to `logger`, so that an operator sees why no trace arrives.
   */
  reportProblemsTo(logger: TracingProblemLogger): void;
  /** Exports what is buffered (tests, the `job` command before it exits). */
  forceFlush(): Promise<void>;
  /**
   * Flushes, then stops exporting and unpatches the instrumented modules. Never rejects: spans
   * the receiver did not take are reported as a problem (`reportProblemsTo`).
   */
  shutdown(): Promise<void>;
}

function samplerOf(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

function exporterOf(settings: TracingSettings): SpanExporter {
  type ExporterConfig = NonNullable<ConstructorParameters<typeof OtlpProtobufExporter>[0]>;
  const config: ExporterConfig = {
    url: settings.url,
    headers: settings.headers,
    timeoutMillis: settings.timeoutMs,
    compression: settings.compression as ExporterConfig["compression"],
  };
  return settings.protocol === "http/json"
    ? new OtlpJsonExporter(config)
    : new OtlpProtobufExporter(config);
}

/**
 * The ioredis span's statement: the command and its keys, never another argument. Which
 * arguments are keys is Redis's own command table's answer (`@ioredis/commands`, what ioredis
 * itself reads): a script's keys follow its sha and their count, and a command without keys is
 * its name alone. Taking the first argument for a key would export AUTH's password whenever a
 * connection is made inside a trace (a client connecting lazily, or reconnecting, in a request).
 * A command the table does not know is its name alone.
 */
function redisStatement(command: string, args: unknown[]): string {
  let indexes: number[];
  try {
    indexes = getKeyIndexes(command.toLowerCase(), args as (string | Buffer | number)[]);
  } catch {
    return command;
  }
  const keys = indexes.map((index) => args[index]).filter((key) => typeof key === "string");
  return keys.length === 0 ? command : `${command} ${keys.join(" ")}`;
}

function reportProblemsTo(logger: TracingProblemLogger): void {
  const forward =
    (level: "warn" | "error") =>
    (message: string, ...args: unknown[]) =>
      logger[level]({ details: args.map(String).join(" ").slice(0, 500) }, `tracing: ${message}`);
  const sink: DiagLogger = {
    error: forward("error"),
    warn: forward("warn"),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
  diag.setLogger(sink, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

/**
 * Starts tracing with `settings` and returns its handle. `exporter` replaces the OTLP exporter
 * (tests); spans always pass the sanitizer on their way out.
 */
export function startTracing(
  settings: TracingSettings,
  options: { exporter?: SpanExporter } = {},
): Tracing {
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);

  const propagators: TextMapPropagator[] = settings.propagators.map((name) =>
    name === "tracecontext" ? new W3CTraceContextPropagator() : new W3CBaggagePropagator(),
  );
  propagation.setGlobalPropagator(new CompositePropagator({ propagators }));

  const resource = defaultResource().merge(
    resourceFromAttributes({
      "host.name": hostname(),
      "process.pid": process.pid,
      ...settings.resourceAttributes,
      // The spec: OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES.
      "service.name": settings.serviceName,
      "service.version": API_VERSION,
    }),
  );
  const processor = new BatchSpanProcessor({
    exporter: new SanitizingSpanExporter(options.exporter ?? exporterOf(settings)),
    scheduledDelayMillis: settings.batch.scheduledDelayMs,
    exportTimeoutMillis: settings.batch.exportTimeoutMs,
    maxQueueSize: settings.batch.maxQueueSize,
    maxExportBatchSize: settings.batch.maxExportBatchSize,
  });
  const provider = new TracerProvider({
    resource,
    sampler: samplerOf(settings.sampler, settings.samplerRatio),
    spanProcessors: [processor],
  });
  trace.setGlobalTracerProvider(provider);
  setTracingOn(true);

  const instrumentations: Record<InstrumentationName, () => Instrumentation> = {
    // Outgoing calls only: each request's server span is made by `http/traceContext.ts`.
    http: () => new HttpInstrumentation({ disableIncomingRequestInstrumentation: true }),
    undici: () => new UndiciInstrumentation(),
    pg: () =>
      new PgInstrumentation({
        // Statements outside any request, job or delivery (pool warm-up, migrations at start)
        // would each be a trace of their own.
        requireParentSpan: true,
        // A span per pooled checkout doubles the spans of every request and says little.
        ignoreConnectSpans: true,
        enhancedDatabaseReporting: false,
      }),
    ioredis: () =>
      new IORedisInstrumentation({
        requireParentSpan: true,
        dbStatementSerializer: (command, args) => redisStatement(command, args),
      }),
  };
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: settings.instrumentations.map((name) => instrumentations[name]()),
  });

  let stopping: Promise<void> | undefined;
  return {
    settings,
    reportProblemsTo,
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopping ??= (async () => {
        unregister();
        setTracingOn(false);
        // A receiver that is down at exit loses the last spans, not the exit: the failure is
        // reported (`reportProblemsTo`), never thrown at the shutdown or the `job` command.
        await provider.shutdown().catch((error: unknown) => {
          diag.warn("the last spans could not be exported", error);
        });
        trace.disable();
        propagation.disable();
        context.disable();
      })()),
  };
}
