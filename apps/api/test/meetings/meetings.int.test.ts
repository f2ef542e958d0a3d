import { systemClock } from "../../src/lib/clock";
import { NotFoundError, ValidationError } from "@zigznote/shared";
import { createPrismaClient, TERMINAL_BOT_STATUSES, type Meeting } from "@zigznote/database";
import { createBot, createOrganization } from "@zigznote/database/testing";
import { randomUUID } from "node:crypto";
import {
  createMeeting,
  getMeeting,
  listMeetings,
  deleteMeeting,
  type MeetingDeps,
  updateMeeting,
} from "../../src/meetings";
import { toMeetingResponse } from "../../src/meetings";
import { testDatabaseUrl } from "../support/env";

const db = createPrismaClient(testDatabaseUrl, { maxConnections: 10 });
afterAll(() => db.$disconnect());
const deleted: Meeting[] = [];
const deps: MeetingDeps = {
  db,
  clock: systemClock,
  onMeetingDeleted: (meeting) => {
    deleted.push(meeting);
    return Promise.resolve();
  },
};

let zoomSequence = 0;
function zoomUrl(): string {
  zoomSequence += 1;
  const id = `${Date.now()}`.slice(-8) + String(zoomSequence).padStart(3, "0");
  return `https://us02web.zoom.us/j/${id}?pwd=secret`;
}

describe("meetingService", () => {
  it("creates a meeting with its platform, normalized link and canonical link", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(deps, {
      organizationId: org.id,
      title: "Kick-off",
      meetingUrl: " https://MEET.google.com/abc-defg-hij?authuser=0 ",
      startTime: new Date("2026-12-01T10:00:00Z"),
    });
    expect(meeting).toMatchObject({
      platform: "google_meet",
      normalizedMeetingUrl: "google_meet:abc-defg-hij",
      // Stored and shown as the canonical link: what Recall is sent.
      meetingUrl: "https://meet.google.com/abc-defg-hij",
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
      createMeeting(deps, {
        organizationId: org.id,
        title: "x",
        meetingUrl: "https://example.com/call",
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      createMeeting(deps, {
        organizationId: org.id,
        title: "x",
        meetingUrl: zoomUrl(),
        startTime: new Date("2026-12-01T10:00:00Z"),
        endTime: new Date("2026-12-01T09:00:00Z"),
      }),
    ).rejects.toThrow(/endTime must be after startTime/);
  });

  it("pages newest first over (createdAt, id) without gaps or repeats, filtered by status", async () => {
    const org = await createOrganization(db);
    const created = [];
    for (let i = 0; i < 7; i += 1) {
      created.push(
        await createMeeting(deps, {
          organizationId: org.id,
          title: `m${i}`,
          meetingUrl: zoomUrl(),
        }),
      );
    }
    // Two meetings share a creation instant: the id breaks the tie.
    const same = new Date("2026-11-20T00:00:00Z");
    await db.meeting.updateMany({
      where: { id: { in: [created[2]!.id, created[3]!.id] } },
      data: { createdAt: same },
    });
    await db.meeting.update({ where: { id: created[4]!.id }, data: { status: "completed" } });
    await deleteMeeting(deps, { organizationId: org.id, meetingId: created[5]!.id });

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listMeetings(deps, { organizationId: org.id, limit: 2, cursor });
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

    const completed = await listMeetings(deps, {
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
      listMeetings(deps, { organizationId: org.id, limit: 5, cursor: "bm90LWEtY3Vyc29y" }),
    ).rejects.toBeInstanceOf(ValidationError);
  });

  it("updates fields and re-normalizes a new link", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(deps, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    const updated = await updateMeeting(deps, {
      organizationId: org.id,
      meetingId: meeting.id,
      patch: {
        title: "b",
        meetingUrl: "https://acme.webex.com/meet/Jane/",
      },
    });
    expect(updated).toMatchObject({
      title: "b",
      platform: "webex",
      normalizedMeetingUrl: "webex:acme.webex.com/meet/jane",
    });
    const retitled = await updateMeeting(deps, {
      organizationId: org.id,
      meetingId: meeting.id,
      patch: { title: "c", startTime: null },
    });
    expect(retitled).toMatchObject({
      title: "c",
      normalizedMeetingUrl: "webex:acme.webex.com/meet/jane",
    });
  });

  it("refuses to change the link while a bot is active, but allows other edits", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(deps, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    await createBot(db, meeting, { status: "in_call_recording" });
    await expect(
      updateMeeting(deps, {
        organizationId: org.id,
        meetingId: meeting.id,
        patch: { meetingUrl: zoomUrl() },
      }),
    ).rejects.toMatchObject({ code: "MEETING_HAS_ACTIVE_BOT" });
    await expect(
      updateMeeting(deps, {
        organizationId: org.id,
        meetingId: meeting.id,
        patch: {
          meetingUrl: meeting.meetingUrl.replace("pwd=secret", "pwd=x"),
        },
      }),
    ).resolves.toMatchObject({ normalizedMeetingUrl: meeting.normalizedMeetingUrl });
    await expect(
      updateMeeting(deps, {
        organizationId: org.id,
        meetingId: meeting.id,
        patch: { title: "renamed" },
      }),
    ).resolves.toMatchObject({
      title: "renamed",
    });
  });

  it("soft-deletes: the meeting disappears, a second delete is not found, the active bot is reported", async () => {
    const org = await createOrganization(db);
    const meeting = await createMeeting(deps, {
      organizationId: org.id,
      title: "a",
      meetingUrl: zoomUrl(),
    });
    const bot = await createBot(db, meeting, { status: "in_call_recording" });
    const result = await deleteMeeting(deps, { organizationId: org.id, meetingId: meeting.id });
    expect(result.deletedAt).not.toBeNull();
    // The bots feature is handed the deleted meeting; its active bot is still active for it.
    expect(deleted.map((m) => m.id)).toContain(meeting.id);
    expect(
      (
        await db.bot.findFirst({
          where: { meetingId: meeting.id, status: { notIn: [...TERMINAL_BOT_STATUSES] } },
        })
      )?.id,
    ).toBe(bot.id);
    await expect(
      getMeeting(deps, { organizationId: org.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
    await expect(
      deleteMeeting(deps, { organizationId: org.id, meetingId: meeting.id }),
    ).rejects.toBeInstanceOf(NotFoundError);
  });

  describe("organization scoping", () => {
    it("gives organization B a NotFoundError for every operation on A's meeting, and changes nothing", async () => {
      const orgA = await createOrganization(db);
      const orgB = await createOrganization(db);
      const meeting = await createMeeting(deps, {
        organizationId: orgA.id,
        title: "A's",
        meetingUrl: zoomUrl(),
      });

      await expect(
        getMeeting(deps, { organizationId: orgB.id, meetingId: meeting.id }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        updateMeeting(deps, {
          organizationId: orgB.id,
          meetingId: meeting.id,
          patch: { title: "hijacked" },
        }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        updateMeeting(deps, {
          organizationId: orgB.id,
          meetingId: meeting.id,
          patch: { meetingUrl: zoomUrl() },
        }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        deleteMeeting(deps, { organizationId: orgB.id, meetingId: meeting.id }),
      ).rejects.toBeInstanceOf(NotFoundError);
      const listed = await listMeetings(deps, { organizationId: orgB.id, limit: 100 });
      expect(listed.items.map((m) => m.id)).not.toContain(meeting.id);

      const unchanged = await getMeeting(deps, { organizationId: orgA.id, meetingId: meeting.id });
      expect(unchanged.title).toBe("A's");
      expect(unchanged.deletedAt).toBeNull();
    });

    it("answers an unknown or malformed id the same way", async () => {
      const org = await createOrganization(db);
      await expect(
        getMeeting(deps, { organizationId: org.id, meetingId: randomUUID() }),
      ).rejects.toBeInstanceOf(NotFoundError);
      await expect(
        getMeeting(deps, { organizationId: org.id, meetingId: "not-a-uuid" }),
      ).rejects.toBeInstanceOf(NotFoundError);
    });
  });
});
