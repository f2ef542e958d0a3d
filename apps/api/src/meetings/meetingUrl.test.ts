import { ValidationError } from "@zigznote/shared";
import { normalizeMeetingUrl } from "./meetingUrl";

function normalized(url: string): string {
  return normalizeMeetingUrl(url).normalized;
}

function rejection(url: string): ValidationError {
  try {
    normalizeMeetingUrl(url);
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error(`expected ${url} to be rejected`);
}

describe("normalizeMeetingUrl", () => {
  describe("Zoom", () => {
    it.each([
      ["https://zoom.us/j/85012345678", "zoom:85012345678", "https://zoom.us/j/85012345678"],
      [
        "https://us02web.zoom.us/j/85012345678?pwd=abcDEF123",
        "zoom:85012345678",
        "https://us02web.zoom.us/j/85012345678?pwd=abcDEF123",
      ],
      [
        "https://acme.zoom.us/j/85012345678/",
        "zoom:85012345678",
        "https://acme.zoom.us/j/85012345678",
      ],
      [
        "HTTPS://ACME.ZOOM.US/J/85012345678?utm_source=mail#success",
        "zoom:85012345678",
        "https://acme.zoom.us/j/85012345678",
      ],
      ["https://zoom.us/wc/join/85012345678", "zoom:85012345678", "https://zoom.us/j/85012345678"],
      [
        "https://zoom.us/wc/85012345678/join?pwd=x",
        "zoom:85012345678",
        "https://zoom.us/j/85012345678?pwd=x",
      ],
      ["https://zoom.us/s/850123456", "zoom:850123456", "https://zoom.us/j/850123456"],
      [
        "https://zoom.us/w/85012345678?tk=abc",
        "zoom:85012345678",
        "https://zoom.us/w/85012345678?tk=abc",
      ],
      [
        "https://zoom.us/join?confno=85012345678",
        "zoom:85012345678",
        "https://zoom.us/j/85012345678",
      ],
      [
        "https://acme.zoomgov.com/j/1601234567",
        "zoom:1601234567",
        "https://acme.zoomgov.com/j/1601234567",
      ],
      ["zoom.us/j/85012345678", "zoom:85012345678", "https://zoom.us/j/85012345678"],
      ["https://zoom.us/my/Jane.Doe", "zoom:my:jane.doe", "https://zoom.us/my/jane.doe"],
      [
        "https://acme.zoom.us/my/jane.doe/?pwd=1",
        "zoom:my:jane.doe",
        "https://acme.zoom.us/my/jane.doe?pwd=1",
      ],
    ])("%s -> %s, %s", (input, normalized, url) => {
      expect(normalizeMeetingUrl(input)).toEqual({ platform: "zoom", normalized, url });
    });

    it("treats the password, host and tracking parameters as not identifying the meeting", () => {
      expect(normalized("https://us05web.zoom.us/j/85012345678?pwd=one&uname=x")).toBe(
        normalized("https://acme.zoom.us/j/85012345678?pwd=two"),
      );
    });

    it("keeps different meeting ids apart", () => {
      expect(normalized("https://zoom.us/j/85012345678")).not.toBe(
        normalized("https://zoom.us/j/85012345679"),
      );
    });

    it.each([
      ["https://zoom.us/", /no valid meeting id|not a meeting link/],
      ["https://zoom.us/j/12345", /9 to 11 digits/],
      ["https://zoom.us/j/abcdefghij", /9 to 11 digits/],
      ["https://zoom.us/pricing", /not a meeting link/],
      ["https://zoom.us/j/85012345678/extra", /not a meeting link/],
      ["https://zoom.us/join/85012345678", /not a meeting link/],
      ["https://evilzoom.us/j/85012345678", /Only Zoom, Google Meet/],
      ["https://zoom.us.evil.example/j/85012345678", /Only Zoom, Google Meet/],
    ])("rejects %s", (url, message) => {
      expect(rejection(url).message).toMatch(message);
    });
  });

  describe("Google Meet", () => {
    it.each([
      "https://meet.google.com/abc-defg-hij",
      "https://meet.google.com/ABC-DEFG-HIJ/",
      "https://meet.google.com/abc-defg-hij?authuser=1&hs=122",
      "meet.google.com/abcdefghij",
      "http://meet.google.com/abc-defg-hij#x",
      "http://meet.google.com:6379/abc-defg-hij",
      "https://meet.google.com/x/../abc-defg-hij",
    ])("%s -> google_meet:abc-defg-hij", (input) => {
      expect(normalizeMeetingUrl(input)).toEqual({
        platform: "google_meet",
        normalized: "google_meet:abc-defg-hij",
        url: "https://meet.google.com/abc-defg-hij",
      });
    });

    it.each([
      "https://meet.google.com/",
      "https://meet.google.com/abc-def-hij",
      "https://meet.google.com/abc-defg-hij/extra",
      "https://meet.google.com/lookup/team",
      "https://meet.google.com/123-4567-890",
    ])("rejects %s", (url) => {
      expect(rejection(url).message).toMatch(/Google Meet link has no meeting code/);
    });
  });

  describe("Microsoft Teams", () => {
    const thread = "19%3ameeting_NjA3MzQ5ZTgtYmE4Zi00ZjQx%40thread.v2";

    it("reduces a meetup-join link to its thread id", () => {
      expect(
        normalizeMeetingUrl(
          `https://teams.microsoft.com/l/meetup-join/${thread}/0?context=%7b%22Tid%22%3a%22x%22%7d`,
        ),
      ).toEqual({
        platform: "microsoft_teams",
        normalized: "microsoft_teams:19:meeting_NjA3MzQ5ZTgtYmE4Zi00ZjQx@thread.v2",
        url:
          "https://teams.microsoft.com/l/meetup-join/19%3Ameeting_NjA3MzQ5ZTgtYmE4Zi00ZjQx%40thread.v2/0" +
          "?context=%7B%22Tid%22%3A%22x%22%7D",
      });
    });

    it("ignores the message id, context, escaping case and trailing slash", () => {
      const a = normalized(`https://teams.microsoft.com/l/meetup-join/${thread}/0?context=a`);
      const b = normalized(
        "https://TEAMS.microsoft.com/l/meetup-join/19%3Ameeting_NjA3MzQ5ZTgtYmE4Zi00ZjQx%40thread.v2/1234/",
      );
      expect(a).toBe(b);
    });

    it.each([
      [
        "https://teams.microsoft.com/meet/23456789012345?p=AbCdEf",
        "microsoft_teams:meet:23456789012345",
        "https://teams.microsoft.com/meet/23456789012345?p=AbCdEf",
      ],
      [
        "http://teams.live.com:8443/meet/9876543210987?p=xyz&utm=1",
        "microsoft_teams:live:9876543210987",
        "https://teams.live.com/meet/9876543210987?p=xyz",
      ],
    ])("%s -> %s, %s", (input, normalized, url) => {
      expect(normalizeMeetingUrl(input)).toEqual({ platform: "microsoft_teams", normalized, url });
    });

    it.each([
      "https://teams.microsoft.com/",
      "https://teams.microsoft.com/l/meetup-join/",
      "https://teams.microsoft.com/l/meetup-join/19%3achat_abc%40thread.v2/0",
      "https://teams.microsoft.com/l/channel/19%3aabc%40thread.skype/General",
      "https://teams.live.com/meet/",
      "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/0/admin",
      "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2/x",
    ])("rejects %s", (url) => {
      expect(rejection(url).message).toMatch(/Microsoft Teams link/);
    });
  });

  describe("Webex", () => {
    it.each([
      [
        "https://acme.webex.com/meet/jane.doe",
        "webex:acme.webex.com/meet/jane.doe",
        "https://acme.webex.com/meet/jane.doe",
      ],
      [
        "https://ACME.webex.com/meet/Jane.Doe/?utm_campaign=x",
        "webex:acme.webex.com/meet/jane.doe",
        "https://acme.webex.com/meet/Jane.Doe",
      ],
      [
        "https://acme.webex.com/join/jane.doe",
        "webex:acme.webex.com/join/jane.doe",
        "https://acme.webex.com/join/jane.doe",
      ],
      [
        "https://acme.my.webex.com/acme.my/j.php?MTID=m0123456789abcdef&utm=1",
        "webex:acme.my.webex.com/acme.my/j.php?mtid=m0123456789abcdef",
        "https://acme.my.webex.com/acme.my/j.php?MTID=m0123456789abcdef",
      ],
    ])("%s -> %s, %s", (input, normalized, url) => {
      expect(normalizeMeetingUrl(input)).toEqual({ platform: "webex", normalized, url });
    });

    it("keeps different sites apart", () => {
      expect(normalized("https://acme.webex.com/meet/jane")).not.toBe(
        normalized("https://other.webex.com/meet/jane"),
      );
    });

    it.each([
      ["https://webex.com/meet/jane", /Only Zoom/],
      ["https://acme.webex.com/", /no meeting path/],
      ["https://acme.webex.com/acme/j.php", /no meeting id \(MTID\)/],
      ["https://acme.webex.com:8080/../../admin", /not a meeting link/],
      ["https://acme.webex.com/admin", /not a meeting link/],
      ["https://acme.webex.com/meet/jane/settings", /not a meeting link/],
      ["https://acme.webex.com/meet/a%2F..%2Fadmin", /not a meeting link/],
      ["https://acme.webex.com/meet/a%00b", /not a meeting link/],
      ["https://acme.webex.com/a/b/c/j.php?MTID=m0123456789abcdef", /not a meeting link/],
    ])("rejects %s", (url, message) => {
      expect(rejection(url).message).toMatch(message);
    });
  });

  describe("the canonical link", () => {
    it.each([
      ["http://meet.google.com:6379/abc-defg-hij", "https://meet.google.com/abc-defg-hij"],
      [
        "https://zoom.us:8443/j/85012345678?pwd=a%20b%26c",
        "https://zoom.us/j/85012345678?pwd=a+b%26c",
      ],
      ["https://www.zoom.us./j/85012345678", "https://zoom.us/j/85012345678"],
      ["https://acme.webex.com/%2e%2e/meet/jane", "https://acme.webex.com/meet/jane"],
    ])("%s is sent as %s (https, no port, no dot segments)", (input, url) => {
      expect(normalizeMeetingUrl(input).url).toBe(url);
    });

    it("is a fixed point: canonicalizing a canonical link changes nothing", () => {
      for (const input of [
        "http://meet.google.com:6379/abc-defg-hij",
        "https://us02web.zoom.us/wc/85012345678/join?pwd=x%20y&uname=z",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc%40thread.v2?context=%7b%7d",
        "https://acme.my.webex.com/acme.my/j.php?MTID=m0123456789abcdef",
      ]) {
        const first = normalizeMeetingUrl(input);
        expect(normalizeMeetingUrl(first.url)).toEqual(first);
      }
    });
  });

  describe("malformed or unsupported input", () => {
    it.each([
      ["", /required/],
      ["   ", /required/],
      ["not a url at all", /not a valid URL|Only Zoom/],
      ["ftp://zoom.us/j/85012345678", /http\(s\)/],
      ["javascript:alert(1)", /not a valid URL|Only Zoom|http\(s\)/],
      ["https://user:pass@zoom.us/j/85012345678", /credentials/],
      ["https://example.com/j/85012345678", /Only Zoom, Google Meet, Microsoft Teams and Webex/],
      [`https://zoom.us/j/85012345678?x=${"a".repeat(2100)}`, /longer than 2048/],
      ["https://meet.google.com/%E0%A4%A", /malformed escape/],
    ])("rejects %j", (url, message) => {
      const error = rejection(url);
      expect(error.message).toMatch(message);
      expect(error.code).toBe("VALIDATION_ERROR");
      expect(error.fields[0]).toMatchObject({ path: "meetingUrl", code: "invalid_meeting_url" });
    });
  });
});
