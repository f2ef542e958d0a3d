/**
 * The tracing part of `pnpm bench:api`: what OpenTelemetry costs on `GET /api/v1/me`, five API
 * servers measured in the same run, in alternating rounds:
 *
 * - `before`: the API without its tracing hook, as it was before tracing (the baseline);
 * - `off`: the API as it runs with no OTLP endpoint: instrument.ts loaded, the SDK not;
 * - `exporting`: the API with OTEL_EXPORTER_OTLP_ENDPOINT set, every request sampled (the default
 *   parentbased_always_on, and no caller's traceparent), its spans (the server span and the
 *   statements' spans) exported over OTLP/HTTP protobuf to a receiver in this process, which
 *   reads and drops them as a collector would;
 * - `exporting 10%`: the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio and
 *   OTEL_TRACES_SAMPLER_ARG=0.1, as a busy deployment would sample (every request still carries
 *   its context, its trace id in logs and Trace-Id; one in ten is recorded and exported);
 * - `exporting, no pg`: every request exported, with OTEL_NODE_DISABLED_INSTRUMENTATIONS=pg (the
 *   server span alone): what the statements' spans cost, for an operator weighing them
 *   (informational, no target).
 *
 * Targets: exporting / off >= 0.85 (req/s), off / before >= 0.98. CPU time per response is
 * printed too: it is steadier than req/s when other work loads the machine; so is the spread of
 * the ratio from one round to the next (a target inside it is within the run's noise).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { ServerKind } from "./apiServer";
import { packageOf, selfTime, topShares, type CpuProfile } from "./cpuProfile";
import { roundSpread } from "./report";

/** What bench/api.ts lends: its server processes and its load driver. */
export interface TracingBenchDeps<S extends { kind: ServerKind }, T> {
  start(kind: ServerKind, env: Record<string, string>): Promise<S>;
  stop(server: S): Promise<void>;
  load(server: S, seconds: number): Promise<T>;
  /**
   * Serves every route of the bench once on `server` (its warm-up), so that each server is
   * measured in the state a deployed one is in: one that has served the whole API, writes
   * included, not only `GET /api/v1/me`.
   */
  serveEveryRoute(server: S): Promise<void>;
  emptySample(): T;
  /** Adds a round's sample to its server's whole. */
  mergeSample(into: T, from: T): void;
  stats(sample: T): { rps: number; p50: number; p99: number; cpuMicros: number };
  formatTable(rows: string[][]): string;
  /** The server's CPU profile over `seconds` of load; null when profiles are off. */
  profile(server: S, seconds: number): Promise<CpuProfile | null>;
}

export interface TracingBenchOptions {
  roundSeconds: number;
  rounds: number;
  warmupSeconds: number;
}

/** An OTLP/HTTP receiver that reads every export and drops it, counting requests and bytes. */
async function startDiscardingReceiver(): Promise<{
  url: string;
  exports: () => { requests: number; bytes: number };
  close(): Promise<void>;
}> {
  let requests = 0;
  let bytes = 0;
  const server: Server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      requests += 1;
      // An empty ExportTraceServiceResponse (protobuf: no bytes).
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exports: () => ({ requests, bytes }),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

type Variant = "before" | "off" | "exporting" | "exporting 10%" | "exporting, no pg";

/** Runs the comparison and prints it; returns the targets missed (empty when all are met). */
export async function runTracingBench<S extends { kind: ServerKind }, T>(
  deps: TracingBenchDeps<S, T>,
  options: TracingBenchOptions,
): Promise<string[]> {
  const receiver = await startDiscardingReceiver();
  const servers = new Map<Variant, S>();
  try {
    const otlp = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
      OTEL_SERVICE_NAME: "zigznote-api-bench",
    };
    const variants: Variant[] = ["before", "off", "exporting", "exporting 10%", "exporting, no pg"];
    const started = await Promise.all([
      deps.start("before", {}),
      deps.start("app", {}),
      deps.start("app", otlp),
      deps.start("app", {
        ...otlp,
        OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
        OTEL_TRACES_SAMPLER_ARG: "0.1",
      }),
      deps.start("app", { ...otlp, OTEL_NODE_DISABLED_INSTRUMENTATIONS: "pg" }),
    ]);
    variants.forEach((variant, i) => servers.set(variant, started[i]!));

    console.log(
      `\ntracing on GET /api/v1/me: ${options.rounds} alternating rounds of ${options.roundSeconds} s ` +
        `per server, after ${options.warmupSeconds} s of warm-up each`,
    );
    for (const variant of variants) await deps.serveEveryRoute(servers.get(variant)!);
    for (const variant of variants) await deps.load(servers.get(variant)!, options.warmupSeconds);
    const exportedBefore = receiver.exports();
    const samples = new Map<Variant, T>(variants.map((variant) => [variant, deps.emptySample()]));
    const rounds: Map<Variant, number>[] = [];
    for (let round = 0; round < options.rounds; round += 1) {
      // Each round in another order, so no variant is always measured first or last.
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      const roundRps = new Map<Variant, number>();
      for (const variant of order) {
        const sample = await deps.load(servers.get(variant)!, options.roundSeconds);
        roundRps.set(variant, deps.stats(sample).rps);
        deps.mergeSample(samples.get(variant)!, sample);
      }
      rounds.push(roundRps);
      process.stdout.write(".");
    }
    process.stdout.write("\n");
    const exported = receiver.exports();

    const stats = new Map(variants.map((variant) => [variant, deps.stats(samples.get(variant)!)]));
    const rows = [["server", "req/s", "p50", "p99", "CPU/req"]];
    for (const variant of variants) {
      const s = stats.get(variant)!;
      rows.push([
        variant,
        s.rps.toFixed(0),
        `${s.p50.toFixed(1)} ms`,
        `${s.p99.toFixed(1)} ms`,
        `${s.cpuMicros.toFixed(0)} us`,
      ]);
    }
    console.log(deps.formatTable(rows));

    const misses: string[] = [];
    /** Prints `a` against `b`; a missed target (none for an informational row) is a miss. */
    const compare = (name: string, a: Variant, b: Variant, target: number | null) => {
      const ratio = stats.get(a)!.rps / stats.get(b)!.rps;
      const cpu = stats.get(b)!.cpuMicros / stats.get(a)!.cpuMicros;
      const isMet = target === null || ratio >= target;
      if (!isMet) misses.push(name);
      const verdict =
        target === null ? "(no target)" : `(target >= ${target}) -> ${isMet ? "MET" : "NOT MET"}`;
      const spread = roundSpread(rounds.map((round) => round.get(a)! / round.get(b)!));
      console.log(
        `${name}: req/s ${a} / ${b} = ${ratio.toFixed(3)} ${verdict}; rounds ${spread}; ` +
          `CPU per response ${b} / ${a} = ${cpu.toFixed(3)}`,
      );
    };
    compare("tracing exporting every request vs off", "exporting", "off", 0.85);
    compare("tracing exporting 1 request in 10 vs off", "exporting 10%", "off", 0.85);
    compare("tracing exporting, no statement spans vs off", "exporting, no pg", "off", null);
    compare("SDK present, no endpoint vs before tracing", "off", "before", 0.98);
    const received = {
      requests: exported.requests - exportedBefore.requests,
      bytes: exported.bytes - exportedBefore.bytes,
    };
    console.log(
      `the exporting servers sent ${received.requests} OTLP exports ` +
        `(${(received.bytes / 1024 / 1024).toFixed(1)} MB of protobuf) during the measured rounds`,
    );
    if (received.requests === 0) misses.push("no spans were exported");

    // Where the exporting server's extra time goes, against the same load with tracing off.
    const profiles = await Promise.all(
      (["off", "exporting"] as const).map(async (variant) => {
        const profile = await deps.profile(servers.get(variant)!, options.warmupSeconds);
        return profile ? selfTime([profile], packageOf) : null;
      }),
    );
    const [offTime, exportingTime] = profiles;
    if (offTime && exportingTime) {
      const share = (time: typeof offTime, name: string) =>
        time.busy === 0 ? 0 : (100 * (time.counts.get(name) ?? 0)) / time.busy;
      const table = [["self time by package (%)", "off", "exporting"]];
      for (const [name] of topShares(exportingTime, 12)) {
        table.push([name, share(offTime, name).toFixed(1), share(exportingTime, name).toFixed(1)]);
      }
      console.log(`\n${deps.formatTable(table)}`);
    }
    return misses;
  } finally {
    await Promise.all([...servers.values()].map((server) => deps.stop(server)));
    await receiver.close();
  }
}
