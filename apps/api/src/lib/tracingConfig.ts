/**
 * The OpenTelemetry variables the API reads, with the meaning the OpenTelemetry specification
 * gives them (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, ...).
 *
 * They are parsed here, by `instrument.ts`, on their own: tracing must start before the modules
 * it instruments (pg, ioredis, http) are loaded, and `config.ts` loads the database package.
 * This module imports nothing for that reason.
 *
 * A value the API cannot use never stops it: the specification says an invalid or unrecognized
 * value SHOULD produce a warning and be ignored in favour of the default, and tracing is not what
 * the API is for. Each one is named in `problems` (the variable and why, never its value: a
 * header or an endpoint's query may hold a credential) and its default used. Without a usable
 * endpoint there is nothing to export to: tracing is off.
 *
 * Tracing is on only when an OTLP endpoint is set and neither `OTEL_SDK_DISABLED=true` nor
 * `OTEL_TRACES_EXPORTER=none` says otherwise; off, nothing of the SDK is loaded.
 */

const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;

const PROTOCOLS = ["http/protobuf", "http/json"] as const;

const PROPAGATORS = ["tracecontext", "baggage", "none"] as const;

/** The library instrumentations `tracingSdk.ts` registers. */
export const INSTRUMENTATIONS = ["http", "undici", "pg", "ioredis"] as const;

export type InstrumentationName = (typeof INSTRUMENTATIONS)[number];

export type SamplerName = (typeof SAMPLERS)[number];

type Protocol = (typeof PROTOCOLS)[number];

/** Everything the SDK is built from (`lib/tracingSdk.ts`). */
export interface TracingSettings {
  serviceName: string;
  resourceAttributes: Record<string, string>;
  protocol: Protocol;
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

export interface ParsedTracingEnv {
  /** The settings to start the SDK with, or null when tracing is off. */
  settings: TracingSettings | null;
  /**
   * One entry per variable whose value was ignored, wholly or in part: `NAME: why; what is used
   * instead`. Never the value (a header, an endpoint's query may be a credential); only the
   * unknown names of a list (propagators, instrumentations) are quoted.
   */
  problems: string[];
}

/** `<base>/v1/traces`: the spec appends the signal's path to the base URL's path, query kept. */
function tracesUrlOf(base: URL): string {
  const url = new URL(base.href);
  url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  url.hash = "";
  return url.href;
}

/**
 * Reads the OTEL_* variables of `env` into tracing settings (null: tracing off), and the values
 * it ignored. Never throws.
 */
export function parseTracingEnv(env: NodeJS.ProcessEnv): ParsedTracingEnv {
  const problems: string[] = [];
  const warn = (name: string, why: string, instead: string) =>
    problems.push(`${name}: ${why}; ${instead}`);

  /** The trimmed value, undefined when unset or empty (the spec: empty is unset). */
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === "" ? undefined : value;
  };

  function oneOf<T extends string>(
    name: string,
    allowed: readonly T[],
    fallback: T,
    why = `expected ${allowed.join(", ")}`,
  ): T {
    const value = raw(name);
    if (value === undefined) return fallback;
    const match = allowed.find((candidate) => candidate === value.toLowerCase());
    if (match !== undefined) return match;
    warn(name, why, `using ${fallback}`);
    return fallback;
  }

  function integer(name: string, min: number, max: number, fallback: number): number {
    const value = raw(name);
    if (value === undefined) return fallback;
    const parsed = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (parsed >= min && parsed <= max) return parsed;
    warn(name, `expected a whole number from ${min} to ${max}`, `using ${fallback}`);
    return fallback;
  }

  /** An http(s) URL, or undefined (unset, or invalid: warned). */
  function httpUrl(name: string): URL | undefined {
    const value = raw(name);
    if (value === undefined) return undefined;
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (url && (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "") {
      return url;
    }
    // Exporting elsewhere than the operator meant (the other endpoint variable, say) would be
    // worse than not exporting: tracing is off until the URL is fixed.
    warn(name, "expected an http or https URL", "tracing is off");
    return undefined;
  }

  /**
   * `key1=value1,key2=value2` with percent-encoded values, as headers and resource attributes
   * are given, and the entries (by position: a value may be a credential) that are not.
   */
  function keyValues(name: string): { pairs: Record<string, string>; bad: string[] } {
    const pairs: Record<string, string> = {};
    const bad: string[] = [];
    const value = raw(name);
    if (value === undefined) return { pairs, bad };
    value.split(",").forEach((part, index) => {
      if (part.trim() === "") return;
      const separator = part.indexOf("=");
      const key = separator > 0 ? part.slice(0, separator).trim() : "";
      const encoded = separator > 0 ? part.slice(separator + 1).trim() : "";
      if (key === "" || encoded === "") {
        bad.push(`entry ${index + 1} is not key=value`);
        return;
      }
      try {
        pairs[key] = decodeURIComponent(encoded);
      } catch {
        bad.push(`the value of entry ${index + 1} is not percent-encoded`);
      }
    });
    return { pairs, bad };
  }

  /**
   * Export headers. A malformed entry is left out and the others sent: the OTLP exporter reads
   * these variables itself as well and keeps their well-formed entries whatever is passed to it,
   * so leaving out the whole variable could not be done (and this rule is the exporter's own).
   */
  function headers(name: string): Record<string, string> {
    const { pairs, bad } = keyValues(name);
    if (bad.length > 0) warn(name, bad.join(", "), "left out, the other entries sent");
    return pairs;
  }

  /** Names from a comma-separated list; unknown ones are warned about and left out. */
  function names<T extends string>(name: string, allowed: readonly T[]): T[] | undefined {
    const value = raw(name);
    if (value === undefined) return undefined;
    const known: T[] = [];
    const unknown: string[] = [];
    for (const part of value.split(",")) {
      const entry = part.trim().toLowerCase();
      if (entry === "") continue;
      const match = allowed.find((candidate) => candidate === entry);
      if (match === undefined) unknown.push(entry.slice(0, 40));
      else known.push(match);
    }
    if (unknown.length > 0) {
      warn(
        name,
        `unknown ${unknown.map((entry) => JSON.stringify(entry)).join(", ")} (expected some of ${allowed.join(", ")})`,
        known.length > 0 ? "ignored" : "the default applies",
      );
    }
    return known.length > 0 ? known : undefined;
  }

  // The spec's boolean: "true" (any case) is true; anything but "false" or empty also warns.
  const disabled = raw("OTEL_SDK_DISABLED")?.toLowerCase();
  if (disabled !== undefined && disabled !== "true" && disabled !== "false") {
    warn("OTEL_SDK_DISABLED", "expected true or false", "using false");
  }
  const exporter = oneOf("OTEL_TRACES_EXPORTER", ["otlp", "none"], "otlp");

  // Every variable is read (and warned about) whether tracing ends up on or not: an operator
  // finds out about a bad value when setting it, not when turning tracing on later.
  const endpoint = httpUrl("OTEL_EXPORTER_OTLP_ENDPOINT");
  const tracesEndpoint = httpUrl("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const isEndpointInvalid =
    (raw("OTEL_EXPORTER_OTLP_ENDPOINT") !== undefined && endpoint === undefined) ||
    (raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") !== undefined && tracesEndpoint === undefined);

  const protocolWhy = "expected http/protobuf or http/json (grpc is not supported by this API)";
  const protocol = oneOf("OTEL_EXPORTER_OTLP_PROTOCOL", PROTOCOLS, "http/protobuf", protocolWhy);
  const tracesProtocol = oneOf(
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    PROTOCOLS,
    protocol,
    protocolWhy,
  );
  const exportHeaders = {
    ...headers("OTEL_EXPORTER_OTLP_HEADERS"),
    ...headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
  };
  const timeoutMs = integer("OTEL_EXPORTER_OTLP_TIMEOUT", 1, 600_000, 10_000);
  const tracesTimeoutMs = integer("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1, 600_000, timeoutMs);
  const compression = oneOf("OTEL_EXPORTER_OTLP_COMPRESSION", ["gzip", "none"], "none");
  const tracesCompression = oneOf(
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    ["gzip", "none"],
    compression,
  );

  let serviceName = raw("OTEL_SERVICE_NAME") ?? "zigznote-api";
  if (serviceName.length > 255) {
    warn("OTEL_SERVICE_NAME", "longer than 255 characters", "using zigznote-api");
    serviceName = "zigznote-api";
  }
  // The spec: on any error, the whole of OTEL_RESOURCE_ATTRIBUTES is discarded.
  const attributes = keyValues("OTEL_RESOURCE_ATTRIBUTES");
  if (attributes.bad.length > 0) {
    warn("OTEL_RESOURCE_ATTRIBUTES", attributes.bad.join(", "), "none of its attributes is set");
  }

  const sampler = oneOf(
    "OTEL_TRACES_SAMPLER",
    SAMPLERS,
    "parentbased_always_on",
    `expected one of ${SAMPLERS.join(", ")}`,
  );
  let samplerRatio = 1;
  const ratio = raw("OTEL_TRACES_SAMPLER_ARG");
  if (ratio !== undefined) {
    const parsed = Number(ratio);
    if (parsed >= 0 && parsed <= 1) samplerRatio = parsed;
    else warn("OTEL_TRACES_SAMPLER_ARG", "expected a ratio from 0 to 1", "using 1");
  }

  const propagators = names("OTEL_PROPAGATORS", PROPAGATORS) ?? ["tracecontext", "baggage"];
  const disabledInstrumentations =
    names("OTEL_NODE_DISABLED_INSTRUMENTATIONS", INSTRUMENTATIONS) ?? [];

  const maxQueueSize = integer("OTEL_BSP_MAX_QUEUE_SIZE", 1, 1_000_000, 2_048);
  const batch = {
    scheduledDelayMs: integer("OTEL_BSP_SCHEDULE_DELAY", 1, 600_000, 5_000),
    exportTimeoutMs: integer("OTEL_BSP_EXPORT_TIMEOUT", 1, 600_000, 30_000),
    maxQueueSize,
    // The spec: a batch larger than the queue is capped at the queue size.
    maxExportBatchSize: Math.min(
      integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 1, 100_000, 512),
      maxQueueSize,
    ),
  };

  const url = tracesEndpoint
    ? // Used as given: the spec appends nothing to the signal-specific endpoint.
      raw("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")!
    : endpoint
      ? tracesUrlOf(endpoint)
      : undefined;
  if (disabled === "true" || exporter === "none" || isEndpointInvalid || url === undefined) {
    return { settings: null, problems };
  }
  return {
    problems,
    settings: {
      serviceName,
      resourceAttributes: attributes.bad.length > 0 ? {} : attributes.pairs,
      protocol: tracesProtocol,
      url,
      headers: exportHeaders,
      timeoutMs: tracesTimeoutMs,
      compression: tracesCompression,
      sampler,
      samplerRatio,
      propagators: propagators.filter((name) => name !== "none"),
      instrumentations: INSTRUMENTATIONS.filter((name) => !disabledInstrumentations.includes(name)),
      batch,
    },
  };
}
