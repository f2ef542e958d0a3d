import type { MeetingPlatform } from "@zigznote/database";
import { ValidationError } from "@zigznote/shared";

/**
 * Meeting links as users paste them, reduced to what identifies the call.
 *
 * The normalized form is `<platform>:<identity>` and is what the database compares to refuse a
 * second active bot for the same call (`bots_one_active_per_org_url`). Everything that does not
 * change which call a link opens is dropped: scheme, case of host and path, `www.`, trailing
 * slashes, fragments, tracking parameters, Zoom's regional or vanity host and its `pwd`, Teams'
 * `context` and passcode. What is kept: the Zoom meeting id (or personal link name), the Meet
 * code, the Teams thread or meeting id, the Webex site and meeting path.
 */

export interface NormalizedMeetingUrl {
  platform: MeetingPlatform;
  /** `<platform>:<identity>`, e.g. `zoom:85012345678`, `google_meet:abc-defg-hij`. */
  normalized: string;
}

const MAX_URL_LENGTH = 2048;

const SUPPORTED = "Only Zoom, Google Meet, Microsoft Teams and Webex meeting links are supported";

function invalid(message: string): ValidationError {
  return new ValidationError(message, {
    fields: [{ path: "meetingUrl", message, code: "invalid_meeting_url" }],
  });
}

function isHostOrSubdomain(host: string, domain: string): boolean {
  return host === domain || host.endsWith(`.${domain}`);
}

function pathSegments(url: URL): string[] {
  return url.pathname
    .split("/")
    .filter((segment) => segment.length > 0)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw invalid("The meeting link contains a malformed escape sequence");
      }
    });
}

function parseUrl(input: string): URL {
  const trimmed = input.trim();
  if (trimmed.length === 0) throw invalid("A meeting link is required");
  if (trimmed.length > MAX_URL_LENGTH) {
    throw invalid(`The meeting link is longer than ${MAX_URL_LENGTH} characters`);
  }
  // People paste "meet.google.com/abc-defg-hij" without a scheme; browsers accept it, so do we.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalid("The meeting link is not a valid URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw invalid("The meeting link must be an http(s) URL");
  }
  if (url.username || url.password) throw invalid("The meeting link must not contain credentials");
  return url;
}

// Zoom meeting ids are 9 to 11 digits; links sometimes carry them with spaces or dashes.
const ZOOM_ID = /^\d{9,11}$/;

function zoomId(raw: string | undefined): string {
  const digits = (raw ?? "").replace(/[\s-]/g, "");
  if (!ZOOM_ID.test(digits))
    throw invalid("That Zoom link has no valid meeting id (9 to 11 digits)");
  return digits;
}

function normalizeZoom(url: URL): string {
  const segments = pathSegments(url).map((segment) => segment.toLowerCase());
  const [first, second, third] = segments;
  // /j/<id> (join), /s/<id> (start), /w/<id> (webinar), /wc/join/<id>, /wc/<id>/join|start
  if ((first === "j" || first === "s" || first === "w") && second !== undefined) {
    return `zoom:${zoomId(second)}`;
  }
  if (first === "wc") {
    if (second === "join" && third !== undefined) return `zoom:${zoomId(third)}`;
    if (second !== undefined && (third === "join" || third === "start" || third === undefined)) {
      return `zoom:${zoomId(second)}`;
    }
  }
  // Personal meeting links: /my/<name>. The name is the identity; the host is a vanity alias.
  if (first === "my" && second !== undefined) {
    if (!/^[a-z0-9._-]{1,64}$/.test(second)) throw invalid("That Zoom personal link is malformed");
    return `zoom:my:${second}`;
  }
  // The launcher page: /join?confno=<id>
  const confno = url.searchParams.get("confno");
  if (first === "join" && confno !== null) return `zoom:${zoomId(confno)}`;
  throw invalid("That Zoom link is not a meeting link (expected /j/<meeting id> or /my/<name>)");
}

// abc-defg-hij; Meet also opens the code without dashes.
const MEET_CODE = /^([a-z]{3})-?([a-z]{4})-?([a-z]{3})$/;

function normalizeMeet(url: URL): string {
  const segments = pathSegments(url).map((segment) => segment.toLowerCase());
  const code = segments[0] === "lookup" ? undefined : segments[0];
  const match = code === undefined ? null : MEET_CODE.exec(code);
  if (!match || segments.length > 1) {
    throw invalid(
      "That Google Meet link has no meeting code (expected meet.google.com/abc-defg-hij)",
    );
  }
  return `google_meet:${match[1]}-${match[2]}-${match[3]}`;
}

function normalizeTeams(url: URL, host: string): string {
  const segments = pathSegments(url);
  const lower = segments.map((segment) => segment.toLowerCase());
  if (host === "teams.microsoft.com" && lower[0] === "l" && lower[1] === "meetup-join") {
    // /l/meetup-join/19%3ameeting_<id>%40thread.v2/0?context=... The thread id is the meeting;
    // the trailing message id and the context (tenant, organizer) do not change which call it is.
    const thread = segments[2];
    const match =
      thread === undefined ? null : /^19:meeting_([A-Za-z0-9_=+-]+)@thread\.v2$/i.exec(thread);
    if (!match) throw invalid("That Microsoft Teams link has no meeting thread id");
    // The id is opaque (base64-like): its case is kept, only the fixed wrapper is lowercased.
    return `microsoft_teams:19:meeting_${match[1]}@thread.v2`;
  }
  if (lower[0] === "meet" && segments[1] !== undefined && segments.length === 2) {
    // teams.microsoft.com/meet/<id>?p=<passcode> and teams.live.com/meet/<id>?p=<passcode>:
    // the passcode is a credential for the same meeting, not a different meeting.
    const id = segments[1].replace(/\s/g, "");
    if (!/^[A-Za-z0-9]{6,64}$/.test(id))
      throw invalid("That Microsoft Teams link has a malformed meeting id");
    const space = host === "teams.live.com" ? "live" : "meet";
    return `microsoft_teams:${space}:${id.toLowerCase()}`;
  }
  throw invalid(
    "That Microsoft Teams link is not a meeting link (expected /l/meetup-join/... or /meet/<id>)",
  );
}

function normalizeWebex(url: URL, host: string): string {
  const segments = pathSegments(url).map((segment) => segment.toLowerCase());
  if (segments.length === 0) throw invalid("That Webex link has no meeting path");
  // .../j.php?MTID=<id>: the meeting is the MTID parameter, not the path.
  const last = segments[segments.length - 1];
  if (last === "j.php" || last === "m.php") {
    const mtid = url.searchParams.get("MTID") ?? url.searchParams.get("mtid");
    if (!mtid || !/^[A-Za-z0-9]{8,64}$/.test(mtid))
      throw invalid("That Webex link has no meeting id (MTID)");
    return `webex:${host}/${segments.join("/")}?mtid=${mtid.toLowerCase()}`;
  }
  return `webex:${host}/${segments.join("/")}`;
}

/**
 * Validates a meeting link and returns its platform and normalized form.
 * Throws ValidationError (field `meetingUrl`) for anything unsupported or malformed.
 */
export function normalizeMeetingUrl(input: string): NormalizedMeetingUrl {
  const url = parseUrl(input);
  const host = url.hostname
    .toLowerCase()
    .replace(/^www\./, "")
    .replace(/\.$/, "");

  if (isHostOrSubdomain(host, "zoom.us") || isHostOrSubdomain(host, "zoomgov.com")) {
    return { platform: "zoom", normalized: normalizeZoom(url) };
  }
  if (host === "meet.google.com") {
    return { platform: "google_meet", normalized: normalizeMeet(url) };
  }
  if (host === "teams.microsoft.com" || host === "teams.live.com") {
    return { platform: "microsoft_teams", normalized: normalizeTeams(url, host) };
  }
  if (isHostOrSubdomain(host, "webex.com") && host !== "webex.com") {
    return { platform: "webex", normalized: normalizeWebex(url, host) };
  }
  throw invalid(SUPPORTED);
}
