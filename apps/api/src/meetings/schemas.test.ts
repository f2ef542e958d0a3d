import { CreateMeetingBody, ListMeetingsQuery, UpdateMeetingBody } from "./schemas";

describe("meetings.schemas", () => {
  it("parses a create body with ISO times into dates", () => {
    const body = CreateMeetingBody.parse({
      title: "  Weekly sync ",
      meetingUrl: "https://meet.google.com/abc-defg-hij",
      startTime: "2026-11-30T15:00:00+01:00",
    });
    expect(body.title).toBe("Weekly sync");
    expect(body.startTime).toEqual(new Date("2026-11-30T14:00:00Z"));
  });

  it("rejects unknown fields, empty titles and non-ISO times", () => {
    expect(CreateMeetingBody.safeParse({ title: "x", meetingUrl: "u", extra: 1 }).success).toBe(
      false,
    );
    expect(CreateMeetingBody.safeParse({ title: " ", meetingUrl: "u" }).success).toBe(false);
    expect(
      CreateMeetingBody.safeParse({ title: "x", meetingUrl: "u", startTime: "tomorrow" }).success,
    ).toBe(false);
  });

  it("requires at least one field to update and allows clearing times", () => {
    expect(UpdateMeetingBody.safeParse({}).success).toBe(false);
    expect(UpdateMeetingBody.parse({ startTime: null })).toEqual({ startTime: null });
  });

  it("defaults and bounds the page size", () => {
    expect(ListMeetingsQuery.parse({})).toEqual({ limit: 20 });
    expect(ListMeetingsQuery.parse({ limit: "5", status: "recording" })).toEqual({
      limit: 5,
      status: "recording",
    });
    expect(ListMeetingsQuery.safeParse({ limit: "500" }).success).toBe(false);
    expect(ListMeetingsQuery.safeParse({ status: "nope" }).success).toBe(false);
  });
});
