import type { PrismaClient } from "@zigznote/database";
import { createMeeting, createStorageObject } from "@zigznote/database/testing";
import { checkPlanViolations } from "../../../src/billing";
import { DAY_MS } from "../../../src/lib/time";
import { authHeaderFor } from "../../support/auth";
import { ManualClock } from "../../support/helpers";
import { send, startInstances, type Answer, type Instances } from "./instances";

/**
 * A deletion that resolves a storage violation, racing uploads on two instances (own pools, one
 * database). The organization is read-only for storage (grace over); at once it deletes the
 * meeting that holds most of its bytes and uploads recordings to its other meetings and to the
 * meeting being deleted. Whatever the interleaving, afterwards the organization's usage is its
 * live meetings' recordings, and a storage violation is recorded exactly when that usage is over
 * the limit: the uploads admitted after the resolution that took it over again start a new
 * grace; nothing stale is left from before the deletion, and nothing uploaded goes uncounted.
 */

const ROUNDS = 8;
const UPLOADS = 6;
const UPLOAD_BYTES = 1000;
const GIB = 1024n ** 3n;
jest.setTimeout(180_000);

describe("DELETE /api/v1/meetings/:id racing PUT .../recording while read-only for storage", () => {
  let clock: ManualClock;
  let instances: Instances;
  let db: PrismaClient;

  beforeAll(async () => {
    clock = new ManualClock(new Date("2026-11-10T12:00:00.000Z"));
    instances = await startInstances(2, { clock });
    db = instances.apps[0]!.ctx.db;
  });
  afterAll(async () => {
    await instances.close();
  });

  const urlOf = (index: number) => instances.urls[index % instances.urls.length]!;

  /** PUT after `delayMs`: spread over the deletion's request so that some pass its resolution. */
  async function upload(
    index: number,
    headers: Record<string, string>,
    meetingId: string,
    delayMs: number,
  ) {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    const response = await fetch(`${urlOf(index)}/api/v1/meetings/${meetingId}/recording`, {
      method: "PUT",
      headers: { ...headers, "Content-Type": "video/mp4" },
      body: Buffer.alloc(UPLOAD_BYTES, index),
    });
    const text = await response.text();
    const answer: Answer = { status: response.status, body: text ? JSON.parse(text) : {} };
    return answer;
  }

  async function liveBytes(organizationId: string): Promise<bigint> {
    const sum = await db.storageObject.aggregate({
      where: { organizationId, meeting: { deletedAt: null } },
      _sum: { sizeBytes: true },
    });
    return sum._sum.sizeBytes ?? 0n;
  }

  it("leaves a violation recorded exactly when the live meetings' recordings are over the limit", async () => {
    const settings = instances.apps[0]!.ctx.modules.billing.deps.settings;
    for (let round = 0; round < ROUNDS; round += 1) {
      const caller = await authHeaderFor(instances.apps[0]!); // free: 1 GiB
      const { organizationId } = caller;
      // Two of the uploads fit under the limit beside this one; a third takes it over.
      const kept = await createMeeting(db, { organizationId });
      await createStorageObject(db, kept, { sizeBytes: GIB - BigInt(2 * UPLOAD_BYTES) - 1n });
      const doomed = await createMeeting(db, { organizationId });
      await createStorageObject(db, doomed, { sizeBytes: 2n * GIB });
      const targets = [];
      for (let i = 0; i < UPLOADS; i += 1)
        targets.push(await createMeeting(db, { organizationId }));
      await checkPlanViolations({ db, settings }, { organizationId, now: clock.now() });
      clock.advance(8 * DAY_MS);
      const check = await checkPlanViolations(
        { db, settings },
        { organizationId, now: clock.now() },
      );
      expect(check.violations).toEqual([
        expect.objectContaining({ type: "storage", action: "read_only" }),
      ]);

      const answers = await Promise.all([
        send(urlOf(round), `/api/v1/meetings/${doomed.id}`, {
          method: "DELETE",
          headers: caller.headers,
        }),
        upload(round + 1, caller.headers, doomed.id, round * 4),
        ...targets.map((target, index) =>
          upload(index, caller.headers, target.id, index * 8 + round * 2),
        ),
      ]);
      expect(answers[0].status).toBe(204);
      for (const answer of answers.slice(1)) {
        expect([200, 201, 403, 404]).toContain(answer.status);
        if (answer.status === 403) expect(answer.body.error?.code).toBe("PLAN_LIMIT_STORAGE");
      }

      const usage = await liveBytes(organizationId);
      const overview = await send(urlOf(0), "/api/v1/organization", {
        method: "GET",
        headers: caller.headers,
      });
      expect(overview.body.usage).toMatchObject({ storageBytes: Number(usage) });
      const violations = overview.body.violations as { type: string; action: string }[];
      if (usage > GIB) {
        // Taken over again by uploads admitted after the resolution: a new grace.
        expect(violations).toEqual([
          expect.objectContaining({
            type: "storage",
            action: "grace_period",
            current: Number(usage),
          }),
        ]);
      } else {
        expect(violations).toEqual([]);
      }
    }
  });
});
