import { NotFoundError, ValidationError } from "@zigznote/shared";
import { createPrismaClient } from "@zigznote/database";
import { createBot, createOrganization } from "@zigznote/database/testing";
import { randomUUID } from "node:crypto";
import {
  createMeeting,
  getMeeting,
  listMeetings,
  softDeleteMeeting,
  updateMeeting,
} from "../src/services/meetingService";
import { toMeetingResponse } from "../src/routes/meetings.schemas";
import { testDatabaseUrl } from "./env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
afterAll(() => db.$disconnect());

let zoomSequence = 0;
function zoomUrl(): string {
  zoomSequence += 1;
  const id = `${Date.now()}`.slice(-8) + String(zoomSequence).padStart(3, "0");
  return `https://us02web.zoom.us/j/${id}?pwd=secret`;
}

describe("meetingService", () => {
  it("creates a meeting with its platform and normalized link", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, {
      organizationId: org.id,
      title: "Kick-off",
      meetingUrl: " https://MEET.google.com/abc-defg-hij?authuser=0 ",
      startTime: new Date("2026-12-01T10:00:00Z"),
    });
    expect(meeting).toMatchObject({
      platform: "google_meet",
      normalizedMeetingUrl: "google_meet:abc-defg-hij",
      meetingUrl: "https://MEET.google.com/abc-defg-hij?authuser=0",
      status: "scheduled",
    });
    const view = toMeetingResponse(meeting);
    expect(view.startTime).toBe("2026-12-01T10:00:00.000Z");
    expect(Object.keys(view)).not.toEqual(
      expect.arrayContaining(["organizationId", "normalizedMeetingUrl", "deletedAt"]),
    );
  });

  it("refuses an unsupported link with a validation error", async () => {
    const org = await createOrganization(db);
    await expect(
      createMeeting(db, {
        organizationId: org.id,
        title: "x",
        meetingUrl: "https://example.com/call",
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      createMeeting(db, {
        organizationId: org.id,
        title: "x",
        meetingUrl: zoomUrl(),
        startTime: new Date("2026-12-01T10:00:00Z"),
        endTime: new Date("2026-12-01T09:00:00Z"),
      }),
    ).rejects.toThrow(/endTime must not be before startTime/);
  });

  it("pages newest first over (createdAt, id) without gaps or repeats, filtered by status", async () => {
    const org = await createOrganization(db);
    const created = [];
    for (let i = 0; i < 7; i += 1) {
      created.push(
        await createMeeting(db, { organizationId: org.id, title: `m${i}`, meetingUrl: zoomUrl() }),
      );
    }
    // Two meetings share a creation instant: the id breaks the tie.
    const same = new Date("2026-11-20T00:00:00Z");
    await db.meeting.updateMany({
      where: { id: { in: [created[2]!.id, created[3]!.id] } },
      data: { createdAt: same },
    });
    await db.meeting.update({ where: { id: created[4]!.id }, data: { status: "completed" } });
    await softDeleteMeeting(db, org.id, created[5]!.id, new Date());

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listMeetings(db, { organizationId: org.id, limit: 2, cursor });
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((meeting) => meeting.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    const expected = (
      await db.meeting.findMany({
        where: { organizationId: org.id, deletedAt: null },
        orderBy: [{ createdAt: "desc" }, { id: "desc" }],
      })
    ).map((meeting) => meeting.id);
    expect(seen).toEqual(expected);
    expect(seen).toHaveLength(6);
    expect(seen).not.toContain(created[5]!.id);

    const completed = await listMeetings(db, {
      organizationId: org.id,
      limit: 10,
      status: "completed",
    });
    expect(completed.items.map((meeting) => meeting.id)).toEqual([created[4]!.id]);
    expect(completed.nextCursor).toBeNull();
  });

  it("rejects a tampered cursor", async () => {
    const org = await createOrganization(db);
    await expect(
      listMeetings(db, { organizationId: org.id, limit: 5, cursor: "bm90LWEtY3Vyc29y" }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it("updates fields and re-normalizes a new link", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    const updated = await updateMeeting(db, org.id, meeting.id, {
      title: "b",
      meetingUrl: "https://acme.webex.com/meet/Jane/",
    });
    expect(updated).toMatchObject({
      title: "b",
      platform: "webex",
      normalizedMeetingUrl: "webex:acme.webex.com/meet/jane",
    });
    const retitled = await updateMeeting(db, org.id, meeting.id, { title: "c", startTime: null });
    expect(retitled).toMatchObject({
      title: "c",
      normalizedMeetingUrl: "webex:acme.webex.com/meet/jane",
    });
  });

  it("refuses to change the link while a bot is active, but allows other edits", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    await createBot(db, meeting, { status: "in_call_recording" });
    await expect(
      updateMeeting(db, org.id, meeting.id, { meetingUrl: zoomUrl() }),
    ).rejects.toMatchObject({ code: "MEETING_HAS_ACTIVE_BOT" });
    await expect(
      updateMeeting(db, org.id, meeting.id, {
        meetingUrl: meeting.meetingUrl.replace("pwd=secret", "pwd=x"),
      }),
    ).resolves.toMatchObject({ normalizedMeetingUrl: meeting.normalizedMeetingUrl });
    await expect(
      updateMeeting(db, org.id, meeting.id, { title: "renamed" }),
    ).resolves.toMatchObject({
      title: "renamed",
    });
  });

  it("soft-deletes: the meeting disappears, a second delete is not found, the active bot is reported", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(db, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    const bot = await createBot(db, meeting, { status: "in_call_recording" });
    const result = await softDeleteMeeting(db, org.id, meeting.id, new Date());
    expect(result.meeting.deletedAt).not.toBeNull();
    expect(result.activeBot?.id).toBe(bot.id);
    await expect(getMeeting(db, org.id, meeting.id)).rejects.toBeInstanceOf(NotFoundError);
    await expect(softDeleteMeeting(db, org.id, meeting.id, new Date())).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  describe("organization scoping", () => {
    it("gives organization B a NotFoundError for every operation on A's meeting, and changes nothing", async () => {
      const orgA = await createOrganization(db);
      const orgB = await createOrganization(db);
      const meeting = await createMeeting(db, {
        organizationId: orgA.id,
        title: "A's",
        meetingUrl: zoomUrl(),
      });

      await expect(getMeeting(db, orgB.id, meeting.id)).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        updateMeeting(db, orgB.id, meeting.id, { title: "hijacked" }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        updateMeeting(db, orgB.id, meeting.id, { meetingUrl: zoomUrl() }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(softDeleteMeeting(db, orgB.id, meeting.id, new Date())).rejects.toBeInstanceOf(
        NotFoundError,
      );
      const listed = await listMeetings(db, { organizationId: orgB.id, limit: 100 });
      expect(listed.items.map((m) => m.id)).not.toContain(meeting.id);

      const unchanged = await getMeeting(db, orgA.id, meeting.id);
      expect(unchanged.title).toBe("A's");
      expect(unchanged.deletedAt).toBeNull();
    });

    it("answers an unknown or malformed id the same way", async () => {
      const org = await createOrganization(db);
      await expect(getMeeting(db, org.id, randomUUID())).rejects.toBeInstanceOf(NotFoundError);
      await expect(getMeeting(db, org.id, "not-a-uuid")).rejects.toBeInstanceOf(NotFoundError);
    });
  });
});
