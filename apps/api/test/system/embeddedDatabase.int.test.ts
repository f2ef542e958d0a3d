import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { loadOrCreateDevSessionKey, signDevSessionToken } from "../../src/lib/devSessionKey";
import {
  logEntries,
  repoRoot,
  shellEnv,
  startProcess,
  stopProcess,
  waitForHealth,
  type StartedProcess,
} from "../support/serverProcess";

/**
 * `pnpm start` on the embedded database under the API's own concurrency: every scheduled job run
 * at once (as at a busy cron tick, through the console's "run now"), repeated, while reads and
 * writes are in flight. PGlite is one backend behind many pooled connections; before the session
 * server (packages/database/src/embeddedServer.ts) two connections' extended-protocol batches
 * interleaved there and runs failed with "bind message supplies 4 parameters, but prepared
 * statement "" requires 3", "portal "" does not exist" and the like.
 */

const ROUNDS = 3;
const REQUESTS_IN_FLIGHT = 130;
const PROTOCOL_ERRORS =
  /bind message supplies|prepared statement "" |portal "" does not exist|unnamed prepared statement|Connection terminated unexpectedly/;

const dataDir = mkdtempSync(path.join(tmpdir(), "zigznote-embedded-busy-"));
const keyDir = mkdtempSync(path.join(tmpdir(), "zigznote-devkey-"));
const keyFile = path.join(keyDir, "dev-session-key.pem");
let server: StartedProcess | undefined;
afterAll(async () => {
  if (server) await stopProcess(server);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(keyDir, { recursive: true, force: true });
});

describe("the embedded database under concurrent jobs and requests", () => {
  it("runs every job at once, three times, with 130 requests in flight: every run succeeds, no 5xx, no protocol error", async () => {
    server = startProcess({
      PORT: "0",
      HOST: "127.0.0.1",
      EMBEDDED_DB_DIR: dataDir,
      DEV_SESSION_KEY_FILE: keyFile,
      NODE_ENV: "development",
      LOG_LEVEL: "info",
      JOBS_ENABLED: "false",
      // Far more requests a minute than a free organization's budget: what is measured here is
      // the database, not the request budgets.
      RATE_LIMIT_PER_MINUTE_FREE: "100000",
    });
    const { port } = await waitForHealth(server, 120_000);

    const key = loadOrCreateDevSessionKey(keyFile);
    const token = (userId: string, isPlatformAdmin = false) =>
      signDevSessionToken(key, {
        userId,
        orgId: "org_dev_busy",
        orgSlug: "busy",
        role: "admin",
        ttlSeconds: 3600,
        isPlatformAdmin,
      });
    const admin = token("user_dev_busy");
    const operator = token("user_dev_ops", true);
    const call = async (
      bearer: string,
      method: string,
      url: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) => {
      const res = await fetch(`http://127.0.0.1:${port}${url}`, {
        method,
        headers: {
          authorization: `Bearer ${bearer}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return {
        status: res.status,
        isReplayed: res.headers.get("idempotent-replayed") === "true",
        body: (await res.json()) as Record<string, unknown>,
      };
    };

    expect((await call(admin, "GET", "/api/v1/me")).status).toBe(200);
    const meetingIds: string[] = [];
    // Keyed: the key is claimed and answered in the create's transaction (database procedures),
    // on PGlite as on PostgreSQL; a repeat replays the first answer.
    const standing = (i: number) => ({
      title: `standing meeting ${i}`,
      meetingUrl: `https://meet.google.com/abc-defg-hi${"abcde"[i]}`,
    });
    for (let i = 0; i < 5; i += 1) {
      const created = await call(admin, "POST", "/api/v1/meetings", standing(i), {
        "Idempotency-Key": `standing-${i}`,
      });
      expect(created.status).toBe(201);
      expect(created.isReplayed).toBe(false);
      meetingIds.push(created.body.id as string);
    }
    const repeated = await call(admin, "POST", "/api/v1/meetings", standing(0), {
      "Idempotency-Key": "standing-0",
    });
    expect(repeated).toMatchObject({ status: 201, isReplayed: true, body: { id: meetingIds[0] } });
    const jobs = (await call(operator, "GET", "/api/v1/admin/jobs")).body.data as {
      name: string;
    }[];
    expect(jobs.length).toBeGreaterThanOrEqual(8);

    for (let round = 0; round < ROUNDS; round += 1) {
      const runs = jobs.map((job) =>
        call(operator, "POST", `/api/v1/admin/jobs/${job.name}/run`, {
          reason: `busy tick ${round}`,
        }).then((res) => ({ job: job.name, ...res })),
      );
      const requests = Array.from({ length: REQUESTS_IN_FLIGHT }, (_, i) => {
        const id = meetingIds[i % meetingIds.length]!;
        switch (i % 5) {
          case 0:
            return call(admin, "GET", "/api/v1/me");
          case 1:
            return call(admin, "GET", "/api/v1/meetings?limit=10");
          case 2:
            return call(admin, "GET", `/api/v1/meetings/${id}`);
          case 3:
            return call(admin, "PATCH", `/api/v1/meetings/${id}`, { title: `renamed ${i}` });
          default:
            return call(admin, "GET", "/api/v1/organization");
        }
      });
      const [runResults, requestResults] = await Promise.all([
        Promise.all(runs),
        Promise.all(requests),
      ]);
      expect(
        runResults.filter(
          (run) =>
            run.status !== 200 ||
            (run.body.outcome as { status: string } | undefined)?.status !== "succeeded",
        ),
      ).toEqual([]);
      expect(requestResults.filter((res) => res.status !== 200)).toEqual([]);
    }

    // An operator's tool beside the running server goes through it (PGlite opens a folder once).
    const created = await promisify(execFile)(
      "pnpm",
      ["-s", "--filter", "@zigznote/api", "api-key:create", "--org", "busy ops", "--name", "ops"],
      { cwd: repoRoot, env: shellEnv({ EMBEDDED_DB_DIR: dataDir }) },
    );
    const apiKey = created.stdout.trim().split("\n").at(-1)!;
    expect((await call(apiKey, "GET", "/api/v1/meetings")).status).toBe(200);

    // A second server on the folder is refused, readably, and the first one serves on.
    const second = startProcess({
      PORT: "0",
      EMBEDDED_DB_DIR: dataDir,
      DEV_SESSION_KEY_FILE: keyFile,
    });
    expect(await new Promise((resolve) => second.child.once("exit", resolve))).toBe(1);
    expect(second.output()).toContain(`the embedded database in ${dataDir} is in use by process`);
    expect((await call(admin, "GET", "/api/v1/me")).status).toBe(200);

    const log = server.output();
    expect(log).not.toMatch(PROTOCOL_ERRORS);
    const errorLines = logEntries(log).filter((entry) => Number(entry.level) >= 50);
    expect(errorLines).toEqual([]);
    expect(await stopProcess(server)).toBe(0);
    server = undefined;
  }, 240_000);
});
