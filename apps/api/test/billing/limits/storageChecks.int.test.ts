import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import request from "supertest";
import { createMeeting, createStorageObject } from "@zigznote/database/testing";
import { checkPlanViolations } from "../../../src/billing";
import { DAY_MS } from "../../../src/lib/time";
import { enqueueRecordingImport, processRecordingImport } from "../../../src/recordings";
import { authHeaderFor } from "../../support/auth";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";

/**
 * Storage is a limit like the others: a recording stored over the plan's bytes is a violation
 * (grace, then read-only) as soon as it is recorded, not at the organization's next plan change;
 * and a recording replaced by a smaller one frees storage like a deletion does, resolving the
 * violation at once.
 */

const GIB = 1024n ** 3n;

describe("storage violations follow the recordings stored", () => {
  let clock: ManualClock;
  let testApp: TestApp;
  let storageDir: string;

  beforeAll(() => {
    clock = new ManualClock(new Date("2026-11-10T12:00:00.000Z"));
    storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-storage-checks-"));
    testApp = createTestApp({ clock, env: { STORAGE_DIR: storageDir } });
  });
  afterAll(async () => {
    await testApp.close();
    rmSync(storageDir, { recursive: true, force: true });
  });

  async function overview(headers: Record<string, string>) {
    const res = await request(testApp.app).get("/api/v1/organization").set(headers);
    expect(res.status).toBe(200);
    return res.body as {
      usage: { storageBytes: number };
      violations: { type: string; action: string; graceEndsAt?: string }[];
    };
  }

  function upload(headers: Record<string, string>, meetingId: string, bytes: number) {
    return request(testApp.app)
      .put(`/api/v1/meetings/${meetingId}/recording`)
      .set(headers)
      .set("Content-Type", "video/mp4")
      .send(Buffer.alloc(bytes, 7));
  }

  async function noticesOf(organizationId: string, type: string) {
    return testApp.ctx.db.notification.findMany({
      where: { organizationId, type, recipientUserId: { not: null } },
    });
  }

  it("an upload that takes storage over the plan's limit is recorded as a violation with its grace, and the admins are told", async () => {
    const caller = await authHeaderFor(testApp); // free: 1 GiB
    const { organizationId } = caller;
    const earlier = await createMeeting(testApp.ctx.db, { organizationId });
    await createStorageObject(testApp.ctx.db, earlier, { sizeBytes: GIB - 100n });
    const meeting = await createMeeting(testApp.ctx.db, { organizationId });

    // Within the limit: nothing recorded.
    expect((await upload(caller.headers, meeting.id, 100)).status).toBe(201);
    expect((await overview(caller.headers)).violations).toEqual([]);

    // One byte more than the plan holds: over the limit from this upload on.
    expect((await upload(caller.headers, meeting.id, 101)).status).toBe(200);
    const after = await overview(caller.headers);
    expect(after.usage.storageBytes).toBe(Number(GIB) + 1);
    expect(after.violations).toEqual([
      expect.objectContaining({
        type: "storage",
        action: "grace_period",
        limit: Number(GIB),
        current: Number(GIB) + 1,
        graceEndsAt: new Date(clock.now().getTime() + 7 * DAY_MS).toISOString(),
      }),
    ]);
    expect(await noticesOf(organizationId, "plan.violation")).toHaveLength(1);
  });

  it("replacing a recording by a smaller one resolves the storage violation at once", async () => {
    const caller = await authHeaderFor(testApp);
    const { organizationId } = caller;
    const meeting = await createMeeting(testApp.ctx.db, { organizationId });
    await createStorageObject(testApp.ctx.db, meeting, {
      kind: "recording",
      sizeBytes: 2n * GIB,
    });
    await checkPlanViolations(
      { db: testApp.ctx.db, settings: testApp.ctx.modules.billing.deps.settings },
      { organizationId, now: clock.now() },
    );
    expect((await overview(caller.headers)).violations).toEqual([
      expect.objectContaining({ type: "storage", action: "grace_period" }),
    ]);

    // Still in the grace: the customer re-encodes the recording smaller.
    const replaced = await upload(caller.headers, meeting.id, 4096);
    expect(replaced.status).toBe(200);
    const after = await overview(caller.headers);
    expect(after.usage.storageBytes).toBe(4096);
    expect(after.violations).toEqual([]);
    expect(await noticesOf(organizationId, "plan.violation_resolved")).toHaveLength(1);
  });

  it("a Recall recording copied over the plan's limit is recorded as a violation too", async () => {
    const bytes = Buffer.alloc(2048, 3);
    const media: Server = createServer((_req, res) => {
      res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": bytes.length });
      res.end(bytes);
    });
    await new Promise<void>((resolve) => media.listen(0, "127.0.0.1", resolve));
    try {
      const caller = await authHeaderFor(testApp);
      const { organizationId } = caller;
      const earlier = await createMeeting(testApp.ctx.db, { organizationId });
      await createStorageObject(testApp.ctx.db, earlier, { sizeBytes: GIB - 1024n });
      const meeting = await createMeeting(testApp.ctx.db, { organizationId });
      const importId = await enqueueRecordingImport(
        { db: testApp.ctx.db },
        {
          organizationId,
          meetingId: meeting.id,
          externalId: `rec_${meeting.id}`,
          now: clock.now(),
        },
      );
      const { port } = media.address() as AddressInfo;
      const deps = {
        ...testApp.ctx.modules.recordings.deps.imports,
        resolveMedia: () =>
          Promise.resolve({ url: `http://127.0.0.1:${port}/media.mp4`, contentType: "video/mp4" }),
      };
      expect(await processRecordingImport(deps, { importId: importId! })).toBe("done");
      expect((await overview(caller.headers)).violations).toEqual([
        expect.objectContaining({
          type: "storage",
          action: "grace_period",
          current: Number(GIB) + 1024,
        }),
      ]);
    } finally {
      await new Promise((resolve) => media.close(resolve));
    }
  });
});
