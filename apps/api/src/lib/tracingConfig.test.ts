import { parseTracingEnv } from "./tracingConfig";

describe("parseTracingEnv", () => {
  it("leaves tracing off when no OTLP endpoint is set", () => {
    expect(parseTracingEnv({})).toBeNull();
    expect(
      parseTracingEnv({ OTEL_SERVICE_NAME: "api", OTEL_TRACES_SAMPLER: "always_on" }),
    ).toBeNull();
  });

  it("sends traces to <endpoint>/v1/traces, over http/protobuf unless told otherwise", () => {
    const settings = parseTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" });
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

  it("appends v1/traces to the endpoint's path and keeps its query; the traces endpoint is used as is", () => {
    expect(
      parseTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/?tenant=a" })?.url,
    ).toBe("http://collector:4318/v1/traces?tenant=a");
    expect(
      parseTracingEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "https://otlp.example.com/otlp/?tenant=a&key=b%20c",
      })?.url,
    ).toBe("https://otlp.example.com/otlp/v1/traces?tenant=a&key=b%20c");
    expect(
      parseTracingEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/?tenant=a",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://traces.example.com/ingest?tenant=b",
      })?.url,
    ).toBe("https://traces.example.com/ingest?tenant=b");
  });

  it("uses the traces endpoint and protocol as given, over the general ones", () => {
    const settings = parseTracingEnv({
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
    expect(parseTracingEnv({ ...endpoint, OTEL_SDK_DISABLED: "TRUE" })).toBeNull();
    expect(parseTracingEnv({ ...endpoint, OTEL_TRACES_EXPORTER: "none" })).toBeNull();
    expect(parseTracingEnv({ ...endpoint, OTEL_SDK_DISABLED: "false" })).not.toBeNull();
  });

  it("reads the sampler, its ratio, the service name, resource attributes and batch settings", () => {
    const settings = parseTracingEnv({
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
    expect(parseTracingEnv(endpoint)?.instrumentations).toEqual([
      "http",
      "undici",
      "pg",
      "ioredis",
    ]);
    expect(
      parseTracingEnv({ ...endpoint, OTEL_NODE_DISABLED_INSTRUMENTATIONS: "ioredis, PG" })
        ?.instrumentations,
    ).toEqual(["http", "undici"]);
    expect(() =>
      parseTracingEnv({ ...endpoint, OTEL_NODE_DISABLED_INSTRUMENTATIONS: "express" }),
    ).toThrow(/OTEL_NODE_DISABLED_INSTRUMENTATIONS/);
  });

  it("refuses bad values with a message naming the variable", () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" };
    expect(() => parseTracingEnv({ ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: expected http\/protobuf or http\/json/,
    );
    expect(() => parseTracingEnv({ ...endpoint, OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(
      /OTEL_TRACES_SAMPLER/,
    );
    expect(() => parseTracingEnv({ ...endpoint, OTEL_TRACES_SAMPLER_ARG: "2" })).toThrow(
      /OTEL_TRACES_SAMPLER_ARG/,
    );
    expect(() => parseTracingEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" })).toThrow(
      /OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
    expect(() => parseTracingEnv({ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: "=x" })).toThrow(
      /OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs/,
    );
  });
});
