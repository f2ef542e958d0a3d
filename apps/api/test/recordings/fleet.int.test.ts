import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import {
  createMembership,
  createOrganization,
  createUser,
  prepareTestDatabase,
  uniqueSuffix,
} from "@zigznote/database/testing";
import { abortAbandonedUploads } from "../../src/recordings";
import { clerkTestEnv, signClerkToken } from "../support/auth";
import { testDatabaseUrl, testRedisUrl } from "../support/env";
import { startS3Server, type S3TestServer } from "../support/fakes/s3Server";
import { createTestApp, ManualClock } from "../support/helpers";
import { startApiProcess, type ApiProcess } from "./apiProcess";
import { eventually, generatedBody, MIB, sha256Of, streamPut } from "./transfers";

/**
 * The API as a fleet: real API processes (`node dist/server.js`), each with a STORAGE_DIR of its
 * own as on separate machines, sharing one PostgreSQL, one Redis and one bucket (s3rver on
 * loopback). Their database is this file's own: the processes run jobs over all of it.
 */

const databaseUrl = `${testDatabaseUrl}_fleet`;
const KEY_PREFIX = "fleet/";
let db: PrismaClient;
let s3: S3TestServer;
const storageDirs: string[] = [];
const running: ApiProcess[] = [];

beforeAll(async () => {
  await prepareTestDatabase(databaseUrl);
  db = createPrismaClient(databaseUrl, { maxConnections: 4 });
  s3 = await startS3Server();
}, 60_000);
afterEach(async () => {
  // Whatever a failed test left running.
  await Promise.all(running.splice(0).map((api) => api.kill()));
});
afterAll(async () => {
  await db.$disconnect();
  await s3.close();
  for (const dir of storageDirs) rmSync(dir, { recursive: true, force: true });
});

/** Every file under `dir` (it exists, empty, before the instance starts). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true }) as string[];
}

/** One instance of the deployment: its own STORAGE_DIR, the shared database, Redis and bucket. */
async function startInstance(redisPrefix: string, extra: Record<string, string> = {}) {
  const storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-instance-"));
  storageDirs.push(storageDir);
  const api = await startApiProcess({
    ...clerkTestEnv(),
    ...s3.env(KEY_PREFIX),
    DATABASE_URL: databaseUrl,
    REDIS_URL: testRedisUrl,
    REDIS_KEY_PREFIX: redisPrefix,
    STORAGE_DIR: storageDir,
    JOBS_ENABLED: "false",
    ...extra,
  });
  running.push(api);
  return { api, storageDir };
}

/** An admin of a new organization (who is also a platform admin, to run jobs), with tokens. */
async function newCaller() {
  const organization = await createOrganization(db);
  const user = await createUser(db);
  await createMembership(db, { organizationId: organization.id, userId: user.id, role: "admin" });
  const token = (claims?: Record<string, unknown>) =>
    signClerkToken({
      userId: user.clerkId,
      orgId: organization.clerkId!,
      orgRole: "org:admin",
      expiresInSeconds: 600,
      ...(claims ? { claims } : {}),
    });
  return {
    organization,
    headers: { Authorization: `Bearer ${token()}` },
    platformAdminHeaders: {
      Authorization: `Bearer ${token({ metadata: { platformAdmin: true } })}`,
    },
  };
}

async function call(
  base: string,
  method: string,
  route: string,
  headers: Record<string, string>,
  body?: unknown,
) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: "manual",
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    json: text ? JSON.parse(text) : null,
  };
}

// Each test starts built API processes (two, or one killed mid-upload): on a busy CI runner a
// start alone can take several seconds, so the suite allows more than the default 30 s.
jest.setTimeout(120_000);

describe("two API instances, one database, one Redis, one bucket", () => {
  it("serves through B what was uploaded through A, and a purge run on A deletes it, writing nothing locally", async () => {
    const prefix = `fleet-${uniqueSuffix()}`;
    const a = await startInstance(prefix, { STORAGE_PURGE_AFTER_DAYS: "0" });
    const b = await startInstance(prefix, { STORAGE_PURGE_AFTER_DAYS: "0" });
    const caller = await newCaller();

    const meeting = await call(a.api.url, "POST", "/api/v1/meetings", caller.headers, {
      title: "Fleet",
      meetingUrl: "https://meet.google.com/abc-defg-hij",
    });
    expect(meeting.status).toBe(201);
    const meetingId = meeting.json.id as string;
    const recording = `/api/v1/meetings/${meetingId}/recording`;

    // 2 MiB through A (the case that answered 404 through B with local disks).
    const data = randomBytes(2 * MIB);
    const put = await fetch(`${a.api.url}${recording}`, {
      method: "PUT",
      headers: { ...caller.headers, "Content-Type": "video/mp4" },
      body: data,
    });
    expect(put.status).toBe(201);
    expect(await put.json()).toMatchObject({ sizeBytes: data.length, sha256: sha256Of(data) });

    // Through B: a redirect to the bucket, identical bytes, and a Range.
    const redirect = await call(b.api.url, "GET", recording, caller.headers);
    expect(redirect.status).toBe(302);
    const location = redirect.headers.get("location")!;
    expect(location.startsWith(`${s3.endpoint}/${s3.bucket}/${KEY_PREFIX}`)).toBe(true);
    const whole = await fetch(location);
    expect(Buffer.from(await whole.arrayBuffer()).equals(data)).toBe(true);
    const ranged = await fetch(location, { headers: { Range: "bytes=1048000-1049999" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 1048000-1049999/${data.length}`);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(data.subarray(1048000, 1050000))).toBe(
      true,
    );

    // A direct upload begun on B and completed on A replaces it.
    const replacement = randomBytes(MIB);
    const upload = await call(b.api.url, "POST", `${recording}/uploads`, caller.headers, {
      contentType: "audio/mpeg",
      sizeBytes: replacement.length,
    });
    expect(upload.status).toBe(201);
    const [part] = upload.json.parts as { url: string; headers: Record<string, string> }[];
    expect(
      (await fetch(part!.url, { method: "PUT", headers: part!.headers, body: replacement })).status,
    ).toBe(200);
    const completed = await call(
      a.api.url,
      "POST",
      `${recording}/uploads/${upload.json.id as string}/complete`,
      caller.headers,
    );
    expect(completed.status).toBe(200);
    expect(completed.json).toMatchObject({
      sha256: sha256Of(replacement),
      contentType: "audio/mpeg",
    });
    const link = await call(b.api.url, "GET", `${recording}?redirect=false`, caller.headers);
    expect(
      Buffer.from(await (await fetch(link.json.url as string)).arrayBuffer()).equals(replacement),
    ).toBe(true);
    const [row] = await db.storageObject.findMany({ where: { meetingId } });
    expect(await s3.objectKeys(KEY_PREFIX)).toEqual([`${KEY_PREFIX}${row!.key}`]);

    // Deleted through B; the purge, run on A, deletes the object from the bucket.
    expect(
      (await call(b.api.url, "DELETE", `/api/v1/meetings/${meetingId}`, caller.headers)).status,
    ).toBe(204);
    const purge = await call(
      a.api.url,
      "POST",
      "/api/v1/admin/jobs/cleanupOrphanedStorage/run",
      caller.platformAdminHeaders,
      { reason: "fleet test" },
    );
    expect(purge.status).toBe(200);
    expect(purge.json).toMatchObject({ outcome: { status: "succeeded" } });
    expect(await s3.objectKeys(KEY_PREFIX)).toEqual([]);
    expect(await db.storageObject.count({ where: { meetingId } })).toBe(0);
    expect(
      (await db.meeting.findUniqueOrThrow({ where: { id: meetingId } })).purgedAt,
    ).not.toBeNull();

    // Neither instance wrote a byte to its own disk.
    expect(filesUnder(a.storageDir)).toEqual([]);
    expect(filesUnder(b.storageDir)).toEqual([]);
    expect(await a.api.stop()).toBe(0);
    expect(await b.api.stop()).toBe(0);
    expect(a.api.output()).toContain('"recordings are stored in the S3 bucket"');
  });

  it("refuses to start when the bucket is missing, naming S3_BUCKET", async () => {
    await expect(
      startInstance(`fleet-${uniqueSuffix()}`, { S3_BUCKET: "no-such-bucket" }),
    ).rejects.toThrow(
      /zigznote API failed to start: S3_BUCKET: the bucket "no-such-bucket" does not exist/,
    );
  });
});

describe("an instance killed during a 100 MiB upload", () => {
  it("leaves no visible object, and no multipart upload once the abort job has run", async () => {
    const { api, storageDir } = await startInstance(`fleet-${uniqueSuffix()}`);
    const caller = await newCaller();
    const meeting = await call(api.url, "POST", "/api/v1/meetings", caller.headers, {
      title: "Crash",
      meetingUrl: "https://meet.google.com/abc-defg-hij",
    });
    const meetingId = meeting.json.id as string;
    const total = 100 * MIB;

    let killed: Promise<NodeJS.Signals | null> | undefined;
    const body = generatedBody(total, {
      onChunk: async (sent) => {
        // Once parts of the upload are in the store, the machine goes down.
        if (killed || sent < 40 * MIB) return;
        await eventually(async () => (await s3.openUploads()).length === 1, 20_000);
        killed = api.kill();
        await killed;
      },
    });
    await expect(
      streamPut(
        `${api.url}/api/v1/meetings/${meetingId}/recording`,
        { ...caller.headers, "Content-Type": "video/mp4", "Content-Length": String(total) },
        body,
      ),
    ).rejects.toThrow();
    expect(await killed).toBe("SIGKILL");

    // Nothing became visible: no object, no row; the crash left its multipart upload open.
    expect(await s3.objectKeys(KEY_PREFIX)).toEqual([]);
    expect(await db.storageObject.count({ where: { meetingId } })).toBe(0);
    const open = await s3.openUploads();
    expect(open).toHaveLength(1);
    expect(open[0]!.key.startsWith(`${KEY_PREFIX}${caller.organization.id}/recordings/`)).toBe(
      true,
    );
    expect(filesUnder(storageDir)).toEqual([]);

    // The abort job (any instance, 24 h later) ends it: no parts remain in the store.
    const clock = new ManualClock(Date.now() + 24 * 60 * 60 * 1000 + 60_000);
    const jobApp = createTestApp({ db, clock, storage: s3.storage({ keyPrefix: KEY_PREFIX }) });
    try {
      const result = await abortAbandonedUploads(
        jobApp.ctx.modules.recordings.deps.abandonedUploads,
        { now: clock.now() },
      );
      expect(result.summary).toMatchObject({ storeUploads: 1 });
    } finally {
      await jobApp.close();
    }
    expect(await s3.openUploads()).toEqual([]);
    expect(s3.uploadFolders()).toEqual([]);
    expect(await s3.objectKeys(KEY_PREFIX)).toEqual([]);
  });
});
