import { z } from "zod";

/**
 * The OpenTelemetry variables the API reads, with the meaning the OpenTelemetry specification
 * gives them (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, ...).
 *
 * They are part of the app's configuration (`config.ts` spreads `tracingEnvShape` into its
 * schema), and they are also parsed here on their own, by `instrument.ts`, because tracing must
 * start before the modules it instruments (pg, ioredis, http) are loaded, and `config.ts`
 * loads the database package. This module imports nothing but zod for that reason.
 *
 * Tracing is on only when an OTLP endpoint is set and neither `OTEL_SDK_DISABLED=true` nor
 * `OTEL_TRACES_EXPORTER=none` says otherwise; off, nothing of the SDK is loaded.
 */

const optionalString = z
  .string()
  .trim()
  .transform((value) => (value === "" ? undefined : value))
  .optional();

const httpUrl = optionalString.pipe(z.url({ protocol: /^https?$/ }).optional());

/** The spec's boolean: "true" (any case) is true, anything else (or unset) false. */
const otelBoolean = z
  .string()
  .optional()
  .transform((value) => value?.trim().toLowerCase() === "true");

const protocol = optionalString.pipe(
  z
    .enum(["http/protobuf", "http/json"], {
      message: "expected http/protobuf or http/json (grpc is not supported by this API)",
    })
    .optional(),
);

/** `key1=value1,key2=value2` (percent-encoded values), as headers and resource attributes are given. */
const keyValueList = optionalString.transform((value, ctx) => {
  const pairs: Record<string, string> = {};
  if (value === undefined) return pairs;
  for (const part of value.split(",")) {
    if (part.trim() === "") continue;
    const separator = part.indexOf("=");
    const key = separator > 0 ? part.slice(0, separator).trim() : "";
    if (key === "") {
      ctx.addIssue({ code: "custom", message: "expected key=value pairs separated by commas" });
      return z.NEVER;
    }
    try {
      pairs[key] = decodeURIComponent(part.slice(separator + 1).trim());
    } catch {
      ctx.addIssue({ code: "custom", message: `the value of ${key} is not percent-encoded` });
      return z.NEVER;
    }
  }
  return pairs;
});

const milliseconds = (fallback: number) =>
  optionalString.pipe(z.coerce.number<string>().int().min(1).max(600_000).default(fallback));

const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

/** The library instrumentations `tracingSdk.ts` registers. */
export const INSTRUMENTATIONS = ["http", "undici", "pg", "ioredis"] as const;

export type InstrumentationName = (typeof INSTRUMENTATIONS)[number];

/** The OTEL_* variables, for `config.ts` to spread into its schema. */
export const tracingEnvShape = {
  OTEL_SDK_DISABLED: otelBoolean,
  /** `otlp` (default) or `none`; no other exporter is built in. */
  OTEL_TRACES_EXPORTER: optionalString.pipe(
    z.enum(["otlp", "none"], { message: "expected otlp or none" }).default("otlp"),
  ),
  /** Base URL of an OTLP/HTTP receiver; traces go to `<its path>/v1/traces`, its query kept. */
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl,
  /** The full URL traces are sent to (wins over OTEL_EXPORTER_OTLP_ENDPOINT). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl,
  OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: protocol,
  OTEL_EXPORTER_OTLP_HEADERS: keyValueList,
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: keyValueList,
  OTEL_EXPORTER_OTLP_TIMEOUT: optionalString.pipe(
    z.coerce.number<string>().int().min(1).max(600_000).optional(),
  ),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: optionalString.pipe(
    z.coerce.number<string>().int().min(1).max(600_000).optional(),
  ),
  OTEL_EXPORTER_OTLP_COMPRESSION: optionalString.pipe(z.enum(["gzip", "none"]).optional()),
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: optionalString.pipe(z.enum(["gzip", "none"]).optional()),
  OTEL_SERVICE_NAME: optionalString.pipe(z.string().max(255).default("zigznote-api")),
  OTEL_RESOURCE_ATTRIBUTES: keyValueList,
  OTEL_TRACES_SAMPLER: optionalString.pipe(
    z
      .enum(SAMPLERS, { message: `expected one of ${SAMPLERS.join(", ")}` })
      .default("parentbased_always_on"),
  ),
  /** The ratio of the traceidratio samplers, 0..1 (default 1). */
  OTEL_TRACES_SAMPLER_ARG: optionalString.pipe(z.coerce.number<string>().min(0).max(1).optional()),
  /** Which headers carry the context in and out: tracecontext (W3C), baggage, or none. */
  OTEL_PROPAGATORS: optionalString.pipe(
    z
      .string()
      .default("tracecontext,baggage")
      .transform((value) => value.split(",").map((part) => part.trim().toLowerCase()))
      .pipe(
        z.array(
          z.enum(["tracecontext", "baggage", "none"], {
            message: "expected tracecontext, baggage or none (comma-separated)",
          }),
        ),
      ),
  ),
  /**
   * Library instrumentations left off (comma-separated: http, undici, pg, ioredis), as
   * OpenTelemetry's Node auto-instrumentation reads it. The API's own spans stay.
   */
  OTEL_NODE_DISABLED_INSTRUMENTATIONS: optionalString.pipe(
    z
      .string()
      .default("")
      .transform((value) =>
        value
          .split(",")
          .map((part) => part.trim().toLowerCase())
          .filter((part) => part !== ""),
      )
      .pipe(
        z.array(
          z.enum(INSTRUMENTATIONS, {
            message: `expected some of ${INSTRUMENTATIONS.join(", ")} (comma-separated)`,
          }),
        ),
      ),
  ),
  OTEL_BSP_SCHEDULE_DELAY: milliseconds(5_000),
  OTEL_BSP_EXPORT_TIMEOUT: milliseconds(30_000),
  OTEL_BSP_MAX_QUEUE_SIZE: optionalString.pipe(
    z.coerce.number<string>().int().min(1).max(1_000_000).default(2_048),
  ),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: optionalString.pipe(
    z.coerce.number<string>().int().min(1).max(100_000).default(512),
  ),
};

const tracingEnvSchema = z.object(tracingEnvShape);

export type TracingEnv = z.infer<typeof tracingEnvSchema>;

export type SamplerName = (typeof SAMPLERS)[number];

/** Everything the SDK is built from (`lib/tracingSdk.ts`); null settings mean tracing is off. */
export interface TracingSettings {
  serviceName: string;
  resourceAttributes: Record<string, string>;
  protocol: "http/protobuf" | "http/json";
  /** Where spans are POSTed. */
  url: string;
  /** Sent with every export (an API key of the tracing backend, often: never logged). */
  headers: Record<string, string>;
  timeoutMs: number;
  compression: "gzip" | "none";
  sampler: SamplerName;
  samplerRatio: number;
  propagators: ("tracecontext" | "baggage")[];
  /** Library instrumentations to register (all but the disabled ones). */
  instrumentations: InstrumentationName[];
  batch: {
    scheduledDelayMs: number;
    exportTimeoutMs: number;
    maxQueueSize: number;
    maxExportBatchSize: number;
  };
}

/**
 * `<base>/v1/traces`: the spec appends the signal's path to the base URL's path, so a query
 * string (a tenant or a token some hosted backends want) stays after it.
 */
function tracesUrlOf(base: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  url.hash = "";
  return url.href;
}

/** The tracing settings of a parsed environment, or null when tracing is off. */
export function tracingSettingsOf(env: TracingEnv): TracingSettings | null {
  if (env.OTEL_SDK_DISABLED || env.OTEL_TRACES_EXPORTER === "none") return null;
  const url =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT ? tracesUrlOf(env.OTEL_EXPORTER_OTLP_ENDPOINT) : undefined);
  if (!url) return null;
  return {
    serviceName: env.OTEL_SERVICE_NAME,
    resourceAttributes: env.OTEL_RESOURCE_ATTRIBUTES,
    protocol:
      env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf",
    url,
    headers: { ...env.OTEL_EXPORTER_OTLP_HEADERS, ...env.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    timeoutMs: env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? env.OTEL_EXPORTER_OTLP_TIMEOUT ?? 10_000,
    compression:
      env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? env.OTEL_EXPORTER_OTLP_COMPRESSION ?? "none",
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG ?? 1,
    propagators: env.OTEL_PROPAGATORS.filter((name) => name !== "none"),
    instrumentations: INSTRUMENTATIONS.filter(
      (name) => !env.OTEL_NODE_DISABLED_INSTRUMENTATIONS.includes(name),
    ),
    batch: {
      scheduledDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMs: env.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      // The spec: a batch larger than the queue is capped at the queue size.
      maxExportBatchSize: Math.min(env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, env.OTEL_BSP_MAX_QUEUE_SIZE),
    },
  };
}

/**
 * Parses the OTEL_* variables of `env` into tracing settings (null: tracing off). Throws an
 * Error listing each bad variable, in the format of `config.ts`'s messages.
 */
export function parseTracingEnv(env: NodeJS.ProcessEnv): TracingSettings | null {
  const result = tracingEnvSchema.safeParse(env);
  if (!result.success) {
    const issues = result.error.issues.map(
      (issue) => `  - ${issue.path.join(".") || "(root)"}: ${issue.message}`,
    );
    throw new Error(`Invalid configuration:\n${issues.join("\n")}`);
  }
  return tracingSettingsOf(result.data);
}
