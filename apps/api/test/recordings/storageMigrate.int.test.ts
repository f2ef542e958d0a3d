import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { createMeeting, createOrganization, prepareTestDatabase } from "@zigznote/database/testing";
import request from "supertest";
import { createLogger } from "../../src/lib/logger";
import { migrateLocalToS3, type MigrationProgress } from "../../src/recordings";
import { storeRecording } from "../../src/recordings";
import type { S3Storage } from "../../src/recordings";
import { LocalDiskStorage } from "../../src/recordings";
import { authHeaderFor } from "../support/auth";
import { testDatabaseUrl } from "../support/env";
import { startS3Server, type S3TestServer } from "../support/fakes/s3Server";
import { createTestApp } from "../support/helpers";
import { sha256Of } from "./transfers";

/**
 * `storage:migrate --to s3` on a database of its own (the command copies every row's object, so
 * it must not see other suites' rows): copy, verify, skip what is done, delete local files only
 * when told and only once verified, refuse a file that differs from its row.
 */

const databaseUrl = `${testDatabaseUrl}_storage_migrate`;
const serverEntryDir = path.resolve(__dirname, "../../dist/cli");
let db: PrismaClient;
let s3: S3TestServer;
let storageDir: string;
let source: LocalDiskStorage;
let target: S3Storage;

beforeAll(async () => {
  await prepareTestDatabase(databaseUrl);
  db = createPrismaClient(databaseUrl, { maxConnections: 4 });
  s3 = await startS3Server();
  target = s3.storage({ keyPrefix: "migrated/" });
}, 60_000);
beforeEach(async () => {
  await db.storageObject.deleteMany({});
  storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-migrate-"));
  source = new LocalDiskStorage(storageDir);
});
afterEach(() => rmSync(storageDir, { recursive: true, force: true }));
afterAll(async () => {
  target.client.destroy();
  await db.$disconnect();
  await s3.close();
});

/** Recordings of new meetings stored on local disk, as a deployment has them before moving. */
async function localRecordings(sizes: number[]) {
  const organization = await createOrganization(db);
  const stored = [];
  for (const size of sizes) {
    const meeting = await createMeeting(db, { organizationId: organization.id });
    const data = randomBytes(size);
    const object = await storeRecording(
      { db, storage: source, logger: createLogger("silent") },
      {
        organizationId: organization.id,
        meetingId: meeting.id,
        body: Readable.from([data]),
        contentType: "video/mp4",
        maxBytes: 10_000_000,
      },
    );
    stored.push({ object, data, meeting });
  }
  return { organization, stored };
}

describe("migrateLocalToS3 (storage:migrate --to s3)", () => {
  it("copies and verifies every object; a run again after a cut one copies only what is missing", async () => {
    const { stored } = await localRecordings([1000, 200_000, 3_000_000, 10]);
    // The first run loses the bucket after two copies (a network cut, an expired session).
    let puts = 0;
    const cut: S3Storage = Object.create(target) as S3Storage;
    cut.put = (key, body, options) => {
      puts += 1;
      if (puts > 2) return Promise.reject(new Error("connection reset"));
      return target.put(key, body, options);
    };
    const first = await migrateLocalToS3(
      { db, source, target: cut },
      { deleteLocal: false, concurrency: 1 },
    );
    expect(first).toMatchObject({ total: 4, copied: 2, skipped: 0 });
    expect(first.failures.map((failure) => failure.reason)).toEqual([
      "connection reset",
      "connection reset",
    ]);
    expect((await s3.objectKeys("migrated/")).length).toBe(2);

    const progress: MigrationProgress[] = [];
    const report = await migrateLocalToS3(
      { db, source, target },
      { deleteLocal: false, onProgress: (p) => progress.push(p) },
    );
    expect(report).toMatchObject({
      total: 4,
      copied: 2,
      skipped: 2,
      deletedLocal: 0,
      failures: [],
    });
    expect(progress.map((p) => p.done).sort()).toEqual([1, 2, 3, 4]);
    expect(progress.at(-1)).toMatchObject({ done: 4, total: 4, copied: 2, skipped: 2 });
    for (const { object, data } of stored) {
      const copy = await target.get(object.key);
      const bytes = Buffer.concat(await Readable.from(copy.body).toArray());
      expect(sha256Of(bytes)).toBe(object.sha256);
      expect(bytes.equals(data)).toBe(true);
      expect((await target.stat(object.key))?.metadata).toEqual({ sha256: object.sha256 });
      // Nothing local is deleted unless told.
      expect(await source.exists(object.key)).toBe(true);
    }
    expect(await s3.openUploads()).toEqual([]);
    // A third run has nothing to copy.
    expect(await migrateLocalToS3({ db, source, target }, { deleteLocal: false })).toMatchObject({
      copied: 0,
      skipped: 4,
      failures: [],
    });
  });

  it("refuses a local file that differs from its row, keeping it, and deletes verified ones when told", async () => {
    const { stored } = await localRecordings([5000, 6000]);
    const [bad, good] = stored;
    // Same size, other bytes: a disk that rotted.
    writeFileSync(path.join(storageDir, bad!.object.key), randomBytes(5000));
    const report = await migrateLocalToS3({ db, source, target }, { deleteLocal: true });
    expect(report).toMatchObject({ copied: 1, deletedLocal: 1 });
    expect(report.failures).toEqual([
      { key: bad!.object.key, reason: expect.stringContaining("differs from its row") },
    ]);
    expect(await target.exists(bad!.object.key)).toBe(false);
    expect(await source.exists(bad!.object.key)).toBe(true);
    expect(await target.exists(good!.object.key)).toBe(true);
    expect(await source.exists(good!.object.key)).toBe(false);
    expect(await s3.openUploads()).toEqual([]);
  });

  it("runs as a command: progress, a summary, exit status 0, and the bucket then serves the recordings", async () => {
    const { organization, stored } = await localRecordings([4096, 70_000]);
    const run = promisify(execFile);
    const { stdout } = await run(
      process.execPath,
      [path.join(serverEntryDir, "storageMigrate.js"), "--to", "s3", "--delete-local"],
      {
        env: {
          ...process.env,
          ...s3.env("migrated/"),
          STORAGE_DRIVER: "local",
          STORAGE_DIR: storageDir,
          DATABASE_URL: databaseUrl,
          LOG_LEVEL: "warn",
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      },
    );
    expect(stdout).toContain(`to s3://${s3.bucket}/migrated/`);
    expect(stdout).toMatch(/\[2\/2\] 2 copied, 0 already there, 0 failed, 2 local files deleted/);
    expect(stdout).toContain("done: 2 recordings, 2 copied, 0 already in the bucket, 0 failed");
    for (const { object } of stored)
      expect(existsSync(path.join(storageDir, object.key))).toBe(false);

    // Switched to STORAGE_DRIVER=s3, the same rows are served from the bucket.
    const app = createTestApp({ db, storage: s3.storage({ keyPrefix: "migrated/" }) });
    try {
      const caller = await authHeaderFor(app, { organizationId: organization.id });
      for (const { meeting, data } of stored) {
        const link = await request(app.app)
          .get(`/api/v1/meetings/${meeting.id}/recording?redirect=false`)
          .set(caller.headers);
        expect(link.status).toBe(200);
        const bytes = Buffer.from(await (await fetch(link.body.url as string)).arrayBuffer());
        expect(bytes.equals(data)).toBe(true);
      }
    } finally {
      await app.close();
    }
  });

  it("refuses a bad invocation and a bucket it cannot reach, naming the problem", async () => {
    const run = promisify(execFile);
    const usage = await run(process.execPath, [path.join(serverEntryDir, "storageMigrate.js")], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
    }).catch((error: { code: number; stderr: string }) => error);
    expect(usage).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("usage: storage:migrate --to s3"),
    });
    const missing = await run(
      process.execPath,
      [path.join(serverEntryDir, "storageMigrate.js"), "--to", "s3"],
      {
        env: {
          ...process.env,
          ...s3.env(),
          S3_BUCKET: "no-such-bucket",
          DATABASE_URL: databaseUrl,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        },
      },
    ).catch((error: { code: number; stderr: string }) => error);
    expect(missing).toMatchObject({
      code: 1,
      stderr: expect.stringContaining('S3_BUCKET: the bucket "no-such-bucket" does not exist'),
    });
  });
});
