/**
 * `pnpm bench:storage`: the S3 storage driver against an S3-compatible server on loopback
 * (s3rver, bench/s3rverProcess.ts), the API as it runs in production (`node dist/server.js`),
 * each in a process of its own, all in one run.
 *
 * 1. Upload: a 1 GiB recording PUT through the API (STORAGE_DRIVER=s3: streamed into a
 *    multipart upload, SHA-256 and size limit on the way) against the SDK's `Upload` of the same
 *    bytes straight to the store, with the driver's client, part size and queue. Prints both
 *    throughputs, their ratio (target >= 0.8) and the API process's RSS growth during its upload
 *    (peak minus the RSS just before; target < 100 MB). Rounds alternate the two.
 * 2. Downloads: 200 concurrent downloads of one 32 MiB recording (a short one: a meeting's is
 *    usually far larger) through the presigned redirect (the client follows `Location` to the
 *    store and reads the bytes there) against 200 streamed by an API on local storage (today's
 *    path, and the cheapest way to stream). Prints the API process's CPU time (user + system,
 *    all threads, from /proc) per download for each, their ratio (target <= 0.1), and how many
 *    streamed bytes cost as much API CPU as one redirect (the redirect's cost does not grow with
 *    the recording; streaming's does).
 *
 * Not a test: figures depend on the machine (2 cores shared with other work here); compare the
 * ratios of one run.
 *
 * Env: BENCH_DATABASE_URL (default: TEST_DATABASE_URL's server, database `<name>_bench_storage`;
 * created, migrated and reused), BENCH_UPLOAD_MIB (1024), BENCH_DOWNLOADS (200),
 * BENCH_DOWNLOAD_MIB (32), BENCH_ROUNDS (2), BENCH_TIMEOUT_SECONDS (900: then everything stops).
 */
import { execFileSync, fork, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { createPrismaClient } from "@zigznote/database";
import {
  createMeeting,
  createOrganization,
  DEFAULT_TEST_DATABASE_URL,
  prepareTestDatabase,
} from "@zigznote/database/testing";
import { createApiKey } from "../src/identity";
import { partSizeFor, S3Storage } from "../src/recordings/s3Storage";
import { newStorageKey } from "../src/recordings";
import { S3_TEST_CREDENTIALS, S3_TEST_REGION } from "../test/support/fakes/s3Server";
import { startApiProcess, type ApiProcess } from "../test/recordings/apiProcess";
import { generatedBody, MIB, streamPut } from "../test/recordings/transfers";

const env = process.env;
const uploadBytes = Number(env.BENCH_UPLOAD_MIB ?? 1024) * MIB;
const downloads = Number(env.BENCH_DOWNLOADS ?? 200);
const downloadBytes = Number(env.BENCH_DOWNLOAD_MIB ?? 32) * MIB;
const rounds = Number(env.BENCH_ROUNDS ?? 2);
const timeoutSeconds = Number(env.BENCH_TIMEOUT_SECONDS ?? 900);
/** The driver's default for RECORDING_MAX_BYTES (2 GiB), and its default queue. */
const PART_SIZE = partSizeFor(2 * 1024 * MIB);
const QUEUE_SIZE = 4;

function benchUrl(): string {
  if (env.BENCH_DATABASE_URL) return env.BENCH_DATABASE_URL;
  const url = new URL(env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL);
  url.pathname = `${url.pathname.replace(/^\//, "")}_bench_storage`;
  return url.toString();
}

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system, every thread) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command (which may hold spaces) start at state; utime, stime are 14, 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Resident set size of a process, in bytes. */
function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};
const mibPerSecond = (bytes: number, seconds: number) => bytes / MIB / seconds;
const fmt = (value: number, digits = 2) => value.toFixed(digits);

interface S3Endpoint {
  endpoint: string;
  bucket: string;
  directory: string;
}

async function startStore(children: ChildProcess[]): Promise<S3Endpoint> {
  const child = fork(path.join(__dirname, "s3rverProcess.ts"), [], { stdio: "inherit" });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("message", (message) => resolve(message as S3Endpoint));
    child.once("exit", (code) => reject(new Error(`s3rver exited (${code})`)));
  });
}

/** PUTs `bytes` generated bytes to the API; returns seconds and the peak RSS growth seen. */
async function apiUpload(
  api: ApiProcess,
  recordingUrl: string,
  headers: Record<string, string>,
  bytes: number,
): Promise<{ seconds: number; rssGrowth: number }> {
  const pid = api.child.pid!;
  const before = rssBytes(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 20);
  const started = performance.now();
  try {
    const answer = await streamPut(
      recordingUrl,
      { ...headers, "Content-Type": "video/mp4", "Content-Length": String(bytes) },
      generatedBody(bytes),
    );
    if (answer.status !== 200 && answer.status !== 201) {
      throw new Error(`upload answered ${answer.status}: ${JSON.stringify(answer.json)}`);
    }
    if ((answer.json as { sizeBytes: number }).sizeBytes !== bytes) {
      throw new Error("the API stored another size");
    }
  } finally {
    clearInterval(sampler);
  }
  return { seconds: (performance.now() - started) / 1000, rssGrowth: peak - before };
}

/** The SDK's Upload of the same generated bytes straight to the store; returns seconds. */
async function sdkUpload(storage: S3Storage, bytes: number): Promise<number> {
  const key = `bench/${newStorageKey("00000000-0000-4000-8000-000000000000")}`;
  const started = performance.now();
  await new Upload({
    client: storage.client,
    params: {
      Bucket: storage.bucket,
      Key: key,
      Body: generatedBody(bytes),
      ContentType: "video/mp4",
    },
    partSize: PART_SIZE,
    queueSize: QUEUE_SIZE,
  }).done();
  const seconds = (performance.now() - started) / 1000;
  await storage.client.send(new DeleteObjectCommand({ Bucket: storage.bucket, Key: key }));
  return seconds;
}

/** `count` concurrent GETs of the recording, following redirects, each read to its end. */
async function concurrentDownloads(
  api: ApiProcess,
  recordingUrl: string,
  headers: Record<string, string>,
  count: number,
): Promise<{ cpuPerDownload: number; seconds: number }> {
  const pid = api.child.pid!;
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  const sizes = await Promise.all(
    Array.from({ length: count }, async () => {
      const response = await fetch(recordingUrl, { headers });
      if (response.status !== 200) throw new Error(`download answered ${response.status}`);
      let size = 0;
      for await (const chunk of response.body!) size += (chunk as Uint8Array).length;
      return size;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  // Let the server finish its bookkeeping (logs, sockets) before reading its CPU.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const cpu = cpuSeconds(pid) - cpuBefore;
  if (sizes.some((size) => size !== downloadBytes)) throw new Error("a download was short");
  return { cpuPerDownload: cpu / count, seconds };
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const apis: ApiProcess[] = [];
  process.on("exit", () => {
    for (const child of [...children, ...apis.map((api) => api.child)]) child.kill("SIGKILL");
  });
  const deadline = setTimeout(() => {
    console.error(`bench:storage: stopped after BENCH_TIMEOUT_SECONDS=${timeoutSeconds}`);
    process.exit(1);
  }, timeoutSeconds * 1000);

  const databaseUrl = benchUrl();
  console.log(`bench:storage on ${databaseUrl.replace(/\/\/[^@]*@/, "//")}`);
  await prepareTestDatabase(databaseUrl);
  const db = createPrismaClient(databaseUrl, { maxConnections: 2 });
  const organization = await createOrganization(db);
  const { plainKey } = await createApiKey(
    { db },
    {
      organizationId: organization.id,
      name: "bench:storage",
      scopes: ["meetings:read", "meetings:write"],
    },
  );
  const headers = { Authorization: `Bearer ${plainKey}` };
  const s3Meeting = await createMeeting(db, { organizationId: organization.id });
  const localMeeting = await createMeeting(db, { organizationId: organization.id });

  const store = await startStore(children);
  const storageDir = await mkdtemp(path.join(tmpdir(), "zigznote-bench-storage-"));
  const common = {
    DATABASE_URL: databaseUrl,
    JOBS_ENABLED: "false",
    DATABASE_POOL_SIZE: "10",
    // 200 concurrent downloads are far beyond a plan's request budget.
    RATE_LIMIT_ENABLED: "false",
  };
  const s3Env = {
    STORAGE_DRIVER: "s3",
    S3_BUCKET: store.bucket,
    S3_REGION: S3_TEST_REGION,
    S3_ENDPOINT: store.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
    STORAGE_DIR: path.join(storageDir, "unused"),
  };
  const s3Api = await startApiProcess({ ...common, ...s3Env });
  apis.push(s3Api);
  const localApi = await startApiProcess({
    ...common,
    STORAGE_DIR: path.join(storageDir, "local"),
  });
  apis.push(localApi);
  const driver = new S3Storage({
    bucket: store.bucket,
    region: S3_TEST_REGION,
    endpoint: store.endpoint,
    forcePathStyle: true,
    keyPrefix: "",
    credentials: S3_TEST_CREDENTIALS,
  });
  const s3Recording = `${s3Api.url}/api/v1/meetings/${s3Meeting.id}/recording`;
  const localRecording = `${localApi.url}/api/v1/meetings/${localMeeting.id}/recording`;

  // 1. Upload.
  console.log(
    `\nupload: ${uploadBytes / MIB} MiB, parts of ${PART_SIZE / MIB} MiB, ${QUEUE_SIZE} in flight; ${rounds} rounds`,
  );
  await apiUpload(s3Api, s3Recording, headers, 64 * MIB); // warm-up
  await sdkUpload(driver, 64 * MIB);
  const apiSeconds: number[] = [];
  const sdkSeconds: number[] = [];
  let rssGrowth = 0;
  for (let round = 1; round <= rounds; round += 1) {
    const api = await apiUpload(s3Api, s3Recording, headers, uploadBytes);
    apiSeconds.push(api.seconds);
    rssGrowth = Math.max(rssGrowth, api.rssGrowth);
    const sdk = await sdkUpload(driver, uploadBytes);
    sdkSeconds.push(sdk);
    console.log(
      `  round ${round}: API ${fmt(mibPerSecond(uploadBytes, api.seconds), 1)} MiB/s ` +
        `(${fmt(api.seconds)} s, RSS +${fmt(api.rssGrowth / 1e6, 1)} MB), ` +
        `SDK Upload alone ${fmt(mibPerSecond(uploadBytes, sdk), 1)} MiB/s (${fmt(sdk)} s)`,
    );
  }
  const apiRate = mibPerSecond(uploadBytes, median(apiSeconds));
  const sdkRate = mibPerSecond(uploadBytes, median(sdkSeconds));
  const uploadRatio = apiRate / sdkRate;

  // 2. Downloads.
  console.log(
    `\ndownloads: ${downloads} concurrent of a ${downloadBytes / MIB} MiB recording; ${rounds} rounds`,
  );
  for (const [api, url] of [
    [s3Api, s3Recording],
    [localApi, localRecording],
  ] as const) {
    const answer = await streamPut(
      url,
      { ...headers, "Content-Type": "video/mp4", "Content-Length": String(downloadBytes) },
      generatedBody(downloadBytes),
    );
    if (answer.status !== 200 && answer.status !== 201) throw new Error(`PUT ${answer.status}`);
    await concurrentDownloads(api, url, headers, 20); // warm-up
  }
  const redirectCpu: number[] = [];
  const streamCpu: number[] = [];
  for (let round = 1; round <= rounds; round += 1) {
    const redirect = await concurrentDownloads(s3Api, s3Recording, headers, downloads);
    const streamed = await concurrentDownloads(localApi, localRecording, headers, downloads);
    redirectCpu.push(redirect.cpuPerDownload);
    streamCpu.push(streamed.cpuPerDownload);
    console.log(
      `  round ${round}: redirect ${fmt(redirect.cpuPerDownload * 1000, 3)} ms API CPU per download ` +
        `(${fmt(redirect.seconds)} s for all), streamed ${fmt(streamed.cpuPerDownload * 1000, 3)} ms ` +
        `(${fmt(streamed.seconds)} s)`,
    );
  }
  const cpuRatio = median(redirectCpu) / median(streamCpu);
  const breakEvenKiB = (median(redirectCpu) / median(streamCpu)) * (downloadBytes / 1024);

  console.log("\nresult (medians; the machine is shared, compare the ratios):");
  console.log(
    `  upload ${uploadBytes / MIB} MiB: API ${fmt(apiRate, 1)} MiB/s vs SDK Upload alone ` +
      `${fmt(sdkRate, 1)} MiB/s: ratio ${fmt(uploadRatio)} (target >= 0.8) ${uploadRatio >= 0.8 ? "met" : "NOT met"}`,
  );
  console.log(
    `  API RSS growth during the upload: ${fmt(rssGrowth / 1e6, 1)} MB (target < 100 MB) ` +
      `${rssGrowth < 100e6 ? "met" : "NOT met"}`,
  );
  console.log(
    `  ${downloads} concurrent downloads: API CPU per download ${fmt(median(redirectCpu) * 1000, 3)} ms ` +
      `by redirect vs ${fmt(median(streamCpu) * 1000, 3)} ms streamed: ratio ${fmt(cpuRatio, 3)} ` +
      `(target <= 0.1) ${cpuRatio <= 0.1 ? "met" : "NOT met"}`,
  );
  console.log(
    `  one redirect costs the API the CPU of streaming ${fmt(breakEvenKiB, 0)} KiB ` +
      `(${fmt((median(streamCpu) * 1000) / (downloadBytes / MIB), 3)} ms per streamed MiB)`,
  );

  for (const url of [s3Recording, localRecording]) await fetch(url, { method: "DELETE", headers });
  await Promise.all(apis.map((api) => api.stop()));
  driver.client.destroy();
  for (const child of children) child.disconnect();
  await db.$disconnect();
  await rm(storageDir, { recursive: true, force: true });
  clearTimeout(deadline);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
