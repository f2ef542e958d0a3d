import { createMeeting, createSubscription } from "@zigznote/database/testing";
import request from "supertest";
import { checkPlanViolations } from "../../src/billing";
import { authHeaderFor } from "../support/auth";
import type { FakeRecall } from "../support/fakes/recallServer";
import type { TestApp } from "../support/helpers";
import { startRecallTestApp, type RecallTestApp } from "../support/recallApp";

/** Billing's answers on the real meetings, bots and recordings routes. */
describe("billing enforcement on meetings, bots and recordings", () => {
  let fixture: RecallTestApp;
  let testApp: TestApp;
  let recall: FakeRecall;

  beforeAll(async () => {
    fixture = await startRecallTestApp();
    ({ testApp, recall } = fixture);
  });
  afterAll(() => fixture.close());

  const meetingBody = () => ({
    title: "Weekly",
    meetingUrl: `https://zoom.us/j/${Math.floor(1e10 + Math.random() * 8e10)}`,
  });

  it("answers writes with 402 while suspended, and keeps reads and billing working", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeeting(testApp.ctx.db, { organizationId: caller.organizationId });
    await createSubscription(testApp.ctx.db, {
      organizationId: caller.organizationId,
      status: "suspended",
    });

    const created = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send(meetingBody());
    expect(created.status).toBe(402);
    expect(created.body.error.code).toBe("SUBSCRIPTION_SUSPENDED");
    const bot = await request(testApp.app)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers)
      .send({});
    expect(bot.status).toBe(402);
    const upload = await request(testApp.app)
      .put(`/api/v1/meetings/${meeting.id}/recording`)
      .set(caller.headers)
      .set("Content-Type", "video/mp4")
      .send(Buffer.alloc(100));
    expect(upload.status).toBe(402);
    const patched = await request(testApp.app)
      .patch(`/api/v1/meetings/${meeting.id}`)
      .set(caller.headers)
      .send({ title: "Renamed" });
    expect(patched.status).toBe(402);

    expect((await request(testApp.app).get("/api/v1/meetings").set(caller.headers)).status).toBe(
      200,
    );
    expect(
      (await request(testApp.app).get(`/api/v1/meetings/${meeting.id}`).set(caller.headers)).status,
    ).toBe(200);
    expect(
      (await request(testApp.app).get("/api/v1/billing/subscription").set(caller.headers)).status,
    ).toBe(200);
    // Deleting frees resources: never refused.
    expect(
      (await request(testApp.app).delete(`/api/v1/meetings/${meeting.id}`).set(caller.headers))
        .status,
    ).toBe(204);
    expect(recall.createdBots().filter((b) => b.metadata.meetingId === meeting.id)).toHaveLength(0);
    expect(
      await testApp.ctx.db.meeting.count({ where: { organizationId: caller.organizationId } }),
    ).toBe(1);
  });

  it("refuses meetings and bots with 403 PLAN_LIMIT_MEETINGS once the month's meetings are over the plan", async () => {
    const caller = await authHeaderFor(testApp); // free plan: 10 meetings a month
    const meetings = await Promise.all(
      Array.from({ length: 11 }, () =>
        createMeeting(testApp.ctx.db, { organizationId: caller.organizationId }),
      ),
    );
    const check = await checkPlanViolations(
      { db: testApp.ctx.db, settings: testApp.ctx.modules.billing.deps.settings },
      { organizationId: caller.organizationId, now: new Date() },
    );
    expect(check.violations.map((v) => [v.type, v.action])).toContainEqual([
      "meetings",
      "read_only",
    ]);

    const created = await request(testApp.app)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send(meetingBody());
    expect(created.status).toBe(403);
    expect(created.body.error.code).toBe("PLAN_LIMIT_MEETINGS");
    const bot = await request(testApp.app)
      .post(`/api/v1/meetings/${meetings[0]!.id}/bot`)
      .set(caller.headers)
      .send({});
    expect(bot.status).toBe(403);
    expect(bot.body.error.code).toBe("PLAN_LIMIT_MEETINGS");
    expect(
      await testApp.ctx.db.bot.count({ where: { organizationId: caller.organizationId } }),
    ).toBe(0);
    expect(
      await testApp.ctx.db.meeting.count({ where: { organizationId: caller.organizationId } }),
    ).toBe(11);
    // Reads still work.
    const list = await request(testApp.app).get("/api/v1/meetings?limit=5").set(caller.headers);
    expect(list.status).toBe(200);
  });
});
