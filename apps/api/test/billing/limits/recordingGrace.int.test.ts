import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { request as httpRequest, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { createMeeting, createStorageObject } from "@zigznote/database/testing";
import { checkPlanViolations } from "../../../src/billing";
import { DAY_MS } from "../../../src/lib/time";
import { authHeaderFor } from "../../support/auth";
import { createTestApp, ManualClock, type TestApp } from "../../support/helpers";
import { closeServer, listen } from "../../support/recallEvents";

/**
 * Issue 22: "recordings once the storage grace is over", exactly. The route answers early (before
 * the bytes arrive) from the grace as it stands, and billing decides again in the transaction
 * that records the upload: an upload that began during the grace and finished after it is
 * refused, and its bytes are deleted.
 */
describe("PUT /api/v1/meetings/:id/recording across the end of the storage grace", () => {
  let clock: ManualClock;
  let testApp: TestApp;
  let server: Server;
  let url: string;
  let storageDir: string;

  beforeAll(async () => {
    clock = new ManualClock(new Date("2026-11-10T12:00:00.000Z"));
    storageDir = mkdtempSync(path.join(tmpdir(), "zigznote-grace-"));
    testApp = createTestApp({ clock, env: { STORAGE_DIR: storageDir } });
    ({ server, url } = await listen(testApp.app));
  });
  afterAll(async () => {
    await closeServer(server);
    await testApp.close();
    rmSync(storageDir, { recursive: true, force: true });
  });

  /**
   * PUT with a body sent in two parts; `between` runs once `isStreaming()` says the first part is
   * being stored (the route's early check passed).
   */
  function uploadInTwoParts(
    target: string,
    headers: Record<string, string>,
    isStreaming: () => boolean,
    between: () => void,
  ): Promise<{ status: number; body: { error?: { code: string; details?: unknown } } }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        `${url}${target}`,
        {
          method: "PUT",
          headers: { ...headers, "Content-Type": "video/mp4", "Transfer-Encoding": "chunked" },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (text += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on("error", reject);
      req.write(Buffer.alloc(64 * 1024, 1));
      const startedAt = Date.now();
      const poll = setInterval(() => {
        if (!isStreaming() && Date.now() - startedAt < 10_000) return;
        clearInterval(poll);
        between();
        req.end(Buffer.alloc(1024, 2));
      }, 10);
    });
  }

  it("refuses an upload that began in the grace and ended after it, and keeps none of its bytes", async () => {
    const caller = await authHeaderFor(testApp); // free: 1 GiB
    const { organizationId } = caller;
    const meeting = await createMeeting(testApp.ctx.db, { organizationId });
    await createStorageObject(testApp.ctx.db, meeting, { sizeBytes: 2n * 1024n ** 3n });
    const check = await checkPlanViolations(
      { db: testApp.ctx.db, settings: testApp.ctx.modules.billing.deps.settings },
      { organizationId, now: clock.now() },
    );
    const storage = check.violations.find((violation) => violation.type === "storage");
    expect(storage).toMatchObject({ action: "grace_period" });
    const files = () =>
      readdirSync(storageDir, { recursive: true, withFileTypes: true }).filter((entry) =>
        entry.isFile(),
      ).length;
    const filesBefore = files();

    const answer = await uploadInTwoParts(
      `/api/v1/meetings/${meeting.id}/recording`,
      caller.headers,
      () => files() > filesBefore,
      // The grace ends while the bytes arrive.
      () => clock.set(new Date(storage!.graceEndsAt!).getTime() + DAY_MS),
    );
    expect(answer.status).toBe(403);
    expect(answer.body.error).toMatchObject({
      code: "PLAN_LIMIT_STORAGE",
      details: { limit: 1024 ** 3, current: 2 * 1024 ** 3, planSlug: "free" },
    });
    expect(await testApp.ctx.db.storageObject.count({ where: { meetingId: meeting.id } })).toBe(1);
    expect(files()).toBe(filesBefore);
  });
});
