import { parseTracingEnv } from "./tracingConfig";

/** The settings of `env`, which must have no value to ignore. */
function settingsOf(env: NodeJS.ProcessEnv) {
  const { settings, problems } = parseTracingEnv(env);
  expect(problems).toEqual([]);
  return settings;
}

describe("parseTracingEnv", () => {
  it("leaves tracing off when no OTLP endpoint is set", () => {
    expect(settingsOf({})).toBeNull();
    expect(settingsOf({ OTEL_SERVICE_NAME: "api", OTEL_TRACES_SAMPLER: "always_on" })).toBeNull();
  });

  it("sends traces to <endpoint>/v1/traces, over http/protobuf unless told otherwise", () => {
    const settings = settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" });
    expect(settings).toMatchObject({
      url: "http://collector:4318/v1/traces",
      protocol: "http/protobuf",
      serviceName: "zigznote-api",
      sampler: "parentbased_always_on",
      propagators: ["tracecontext", "baggage"],
      compression: "none",
      timeoutMs: 10_000,
    });
  });

  it("uses the traces endpoint and protocol as given, over the general ones", () => {
    const settings = settingsOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example.com/otlp/v1/traces",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_HEADERS: "x-team=ops,authorization=Bearer%20abc",
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: "x-team=traces",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_COMPRESSION: "gzip",
    });
    expect(settings).toMatchObject({
      url: "https://traces.example.com/otlp/v1/traces",
      protocol: "http/json",
      headers: { "x-team": "traces", authorization: "Bearer abc" },
      timeoutMs: 2500,
      compression: "gzip",
    });
  });

  it("is off with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, whatever the endpoint", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    expect(settingsOf({ ...endpoint, OTEL_SDK_DISABLED: "TRUE" })).toBeNull();
    expect(settingsOf({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })).toBeNull();
    expect(settingsOf({ ...endpoint, OTEL_SDK_DISABLED: "false" })).not.toBeNull();
  });

  it("reads the sampler, its ratio, the service name, resource attributes and batch settings", () => {
    const settings = settingsOf({
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
      OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_SERVICE_NAME: "zigznote-api-eu",
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=production,service.namespace=zigznote",
      OTEL_PROPAGATORS: "tracecontext",
      OTEL_BSP_MAX_QUEUE_SIZE: "100",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "512",
    });
    expect(settings).toMatchObject({
      sampler: "parentbased_traceidratio",
      samplerRatio: 0.25,
      serviceName: "zigznote-api-eu",
      resourceAttributes: {
        "deployment.environment": "production",
        "service.namespace": "zigznote",
      },
      propagators: ["tracecontext"],
      // A batch is never larger than the queue.
      batch: { maxQueueSize: 100, maxExportBatchSize: 100 },
    });
  });

  it("registers every library instrumentation but those OTEL_NODE_DISABLED_INSTRUMENTATIONS names", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    expect(settingsOf(endpoint)?.instrumentations).toEqual(["http", "undici", "pg", "ioredis"]);
    expect(
      settingsOf({ ...endpoint, OTEL_NODE_DISABLED_INSTRUMENTATIONS: "ioredis, PG" })
        ?.instrumentations,
    ).toEqual(["http", "undici"]);
  });

  it("appends v1/traces to the endpoint's path and keeps its query; the traces endpoint is used as is", () => {
    expect(
      settingsOf({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/?tenant=a" })?.url,
    ).toBe("http://collector:4318/v1/traces?tenant=a");
    expect(
      settingsOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://otlp.example.com/otlp/?tenant=a&key=b%20c",
      })?.url,
    ).toBe("https://otlp.example.com/otlp/v1/traces?tenant=a&key=b%20c");
    expect(
      settingsOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/?tenant=a",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example.com/ingest?tenant=b",
      })?.url,
    ).toBe("https://traces.example.com/ingest?tenant=b");
  });
});

describe("parseTracingEnv with values it cannot use", () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };

  it("ignores each one with a problem naming the variable and why, and uses its default", () => {
    const { settings, problems } = parseTracingEnv({
      ...endpoint,
      OTEL_TRACES_SAMPLER: "sometimes",
      OTEL_TRACES_SAMPLER_ARG: "2",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_TIMEOUT: "ten seconds",
      OTEL_EXPORTER_OTLP_COMPRESSION: "brotli",
      OTEL_BSP_SCHEDULE_DELAY: "soon",
      OTEL_BSP_EXPORT_TIMEOUT: "-1",
      OTEL_BSP_MAX_QUEUE_SIZE: "1.5",
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "lots",
      OTEL_TRACES_EXPORTER: "zipkin",
      OTEL_SDK_DISABLED: "yes",
    });
    expect(settings).toMatchObject({
      sampler: "parentbased_always_on",
      samplerRatio: 1,
      protocol: "http/protobuf",
      timeoutMs: 10_000,
      compression: "none",
      batch: {
        scheduledDelayMs: 5_000,
        exportTimeoutMs: 30_000,
        maxQueueSize: 2_048,
        maxExportBatchSize: 512,
      },
    });
    expect(problems).toEqual([
      "OTEL_SDK_DISABLED: expected true or false; using false",
      "OTEL_TRACES_EXPORTER: expected otlp, none; using otlp",
      "OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json (grpc is not supported by this API); using http/protobuf",
      "OTEL_EXPORTER_OTLP_TIMEOUT: expected a whole number from 1 to 600000; using 10000",
      "OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip, none; using none",
      expect.stringMatching(
        /^OTEL_TRACES_SAMPLER: expected one of always_on, .*; using parentbased_always_on$/,
      ),
      "OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1; using 1",
      "OTEL_BSP_MAX_QUEUE_SIZE: expected a whole number from 1 to 1000000; using 2048",
      "OTEL_BSP_SCHEDULE_DELAY: expected a whole number from 1 to 600000; using 5000",
      "OTEL_BSP_EXPORT_TIMEOUT: expected a whole number from 1 to 600000; using 30000",
      "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: expected a whole number from 1 to 100000; using 512",
    ]);
  });

  it("falls back to the general variable when a traces-specific one is invalid", () => {
    const { settings, problems } = parseTracingEnv({
      ...endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_TIMEOUT: "2500",
      OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: "0",
    });
    expect(settings).toMatchObject({ protocol: "http/json", timeoutMs: 2500 });
    expect(problems).toEqual([
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: .*; using http\/json$/),
      expect.stringMatching(/^OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: .*; using 2500$/),
    ]);
  });

  it("leaves out a malformed header entry, sends the others, and never names a value", () => {
    const secret = "s3cr3t-backend-key";
    const { settings, problems } = parseTracingEnv({
      ...endpoint,
      OTEL_EXPORTER_OTLP_HEADERS: `x-team=ops,authorization Bearer ${secret},x-key=${secret}%zz`,
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: `=${secret}`,
    });
    expect(settings?.headers).toEqual({ "x-team": "ops" });
    expect(problems).toEqual([
      "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not key=value, the value of entry 3 is not percent-encoded; left out, the other entries sent",
      "OTEL_EXPORTER_OTLP_TRACES_HEADERS: entry 1 is not key=value; left out, the other entries sent",
    ]);
    expect(problems.join("\n")).not.toContain(secret);
  });

  it("discards the whole of a malformed OTEL_RESOURCE_ATTRIBUTES, as the spec says", () => {
    const { settings, problems } = parseTracingEnv({
      ...endpoint,
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=production,region",
    });
    expect(settings?.resourceAttributes).toEqual({});
    expect(problems).toEqual([
      "OTEL_RESOURCE_ATTRIBUTES: entry 2 is not key=value; none of its attributes is set",
    ]);
  });

  it("ignores unknown names in lists, keeping the known ones", () => {
    const { settings, problems } = parseTracingEnv({
      ...endpoint,
      OTEL_PROPAGATORS: "b3,tracecontext",
      OTEL_NODE_DISABLED_INSTRUMENTATIONS: "express,pg",
    });
    expect(settings).toMatchObject({
      propagators: ["tracecontext"],
      instrumentations: ["http", "undici", "ioredis"],
    });
    expect(problems).toEqual([
      'OTEL_PROPAGATORS: unknown "b3" (expected some of tracecontext, baggage, none); ignored',
      'OTEL_NODE_DISABLED_INSTRUMENTATIONS: unknown "express" (expected some of http, undici, pg, ioredis); ignored',
    ]);
    // Nothing known left: the default.
    expect(parseTracingEnv({ ...endpoint, OTEL_PROPAGATORS: "b3" }).settings?.propagators).toEqual([
      "tracecontext",
      "baggage",
    ]);
  });

  it("turns tracing off for an endpoint that is not an http(s) URL, without quoting it", () => {
    for (const variable of ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
      for (const value of ["collector:4318", "grpc://collector:4317", "http://"]) {
        const { settings, problems } = parseTracingEnv({ ...endpoint, [variable]: value });
        expect(settings).toBeNull();
        expect(problems).toEqual([`${variable}: expected an http or https URL; tracing is off`]);
      }
    }
  });

  it("warns about a bad value even while tracing is off", () => {
    expect(parseTracingEnv({ OTEL_TRACES_SAMPLER: "sometimes" })).toEqual({
      settings: null,
      problems: [expect.stringMatching(/^OTEL_TRACES_SAMPLER: /)],
    });
  });
});
