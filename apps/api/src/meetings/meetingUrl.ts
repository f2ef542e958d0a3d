import type { MeetingPlatform } from "@zigznote/database";
import { ValidationError } from "@zigznote/shared";

/**
 * Meeting links as users paste them, reduced to what identifies the call, and rebuilt as the
 * one link that is stored, shown and sent to Recall.
 *
 * The normalized form is `<platform>:<identity>` and is what the database compares to refuse a
 * second active bot for the same call (`bots_one_active_per_org_url`). Everything that does not
 * change which call a link opens is dropped: scheme, case of host and path, `www.`, trailing
 * slashes, fragments, tracking parameters, Zoom's regional or vanity host and its `pwd`, Teams'
 * `context` and passcode. What is kept: the Zoom meeting id (or personal link name), the Meet
 * code, the Teams thread or meeting id, the Webex site and meeting path.
 *
 * The canonical link (`url`) is built from the parts that were checked, never copied from the
 * input: `https:`, the platform's host without port or credentials, the platform's meeting path
 * (no dot segments: every segment must match that platform's pattern) and only the parameters
 * needed to join (Zoom `pwd`/`tk`, Teams `context`/`p`, Webex `MTID`). A link whose path is not
 * a meeting path of its platform is refused.
 */

export interface NormalizedMeetingUrl {
  platform: MeetingPlatform;
  /** `<platform>:<identity>`, e.g. `zoom:85012345678`, `google_meet:abc-defg-hij`. */
  normalized: string;
  /** The canonical https link, e.g. `https://us02web.zoom.us/j/85012345678?pwd=abc`. */
  url: string;
}

interface PlatformLink {
  normalized: string;
  /** Path of the canonical link, starting with `/`, its segments already percent-encoded. */
  path: string;
  /** Query parameters of the canonical link, in this order; empty values are left out. */
  query?: [name: string, value: string | null][];
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

const ZOOM_NOT_A_MEETING =
  "That Zoom link is not a meeting link (expected /j/<meeting id> or /my/<name>)";

function zoomJoin(url: URL, kind: "j" | "w", id: string): PlatformLink {
  return {
    normalized: `zoom:${id}`,
    path: `/${kind}/${id}`,
    query: [
      ["pwd", url.searchParams.get("pwd")],
      ["tk", url.searchParams.get("tk")],
    ],
  };
}

function normalizeZoom(url: URL): PlatformLink {
  const segments = pathSegments(url).map((segment) => segment.toLowerCase());
  const [first, second, third] = segments;
  const count = segments.length;
  // /j/<id> (join), /s/<id> (start: a bot joins), /w/<id> (webinar)
  if ((first === "j" || first === "s" || first === "w") && count === 2) {
    return zoomJoin(url, first === "w" ? "w" : "j", zoomId(second));
  }
  // /wc/join/<id>, /wc/<id>/join|start, /wc/<id> (the web client)
  if (first === "wc") {
    if (second === "join" && count === 3) return zoomJoin(url, "j", zoomId(third));
    if (count === 2 || (count === 3 && (third === "join" || third === "start"))) {
      return zoomJoin(url, "j", zoomId(second));
    }
  }
  // Personal meeting links: /my/<name>. The name is the identity; the host is a vanity alias.
  if (first === "my" && second !== undefined && count === 2) {
    if (!/^[a-z0-9._-]{1,64}$/.test(second) || /^\.+$/.test(second)) {
      throw invalid("That Zoom personal link is malformed");
    }
    return {
      normalized: `zoom:my:${second}`,
      path: `/my/${second}`,
      query: [["pwd", url.searchParams.get("pwd")]],
    };
  }
  // The launcher page: /join?confno=<id>
  const confno = url.searchParams.get("confno");
  if (first === "join" && count === 1 && confno !== null) {
    return zoomJoin(url, "j", zoomId(confno));
  }
  throw invalid(ZOOM_NOT_A_MEETING);
}

// abc-defg-hij; Meet also opens the code without dashes.
const MEET_CODE = /^([a-z]{3})-?([a-z]{4})-?([a-z]{3})$/;

function normalizeMeet(url: URL): PlatformLink {
  const segments = pathSegments(url).map((segment) => segment.toLowerCase());
  const code = segments[0] === "lookup" ? undefined : segments[0];
  const match = code === undefined ? null : MEET_CODE.exec(code);
  if (!match || segments.length > 1) {
    throw invalid(
      "That Google Meet link has no meeting code (expected meet.google.com/abc-defg-hij)",
    );
  }
  const meetingCode = `${match[1]}-${match[2]}-${match[3]}`;
  return { normalized: `google_meet:${meetingCode}`, path: `/${meetingCode}` };
}

const TEAMS_NOT_A_MEETING =
  "That Microsoft Teams link is not a meeting link (expected /l/meetup-join/... or /meet/<id>)";

function normalizeTeams(url: URL, host: string): PlatformLink {
  const segments = pathSegments(url);
  const lower = segments.map((segment) => segment.toLowerCase());
  if (host === "teams.microsoft.com" && lower[0] === "l" && lower[1] === "meetup-join") {
    // /l/meetup-join/19%3ameeting_<id>%40thread.v2/0?context=... The thread id is the meeting;
    // the trailing message id and the context (tenant, organizer) do not change which call it is.
    const thread = segments[2];
    const match =
      thread === undefined ? null : /^19:meeting_([A-Za-z0-9_=+-]+)@thread\.v2$/i.exec(thread);
    if (!match) throw invalid("That Microsoft Teams link has no meeting thread id");
    const messageId = segments[3] ?? "0";
    if (segments.length > 4 || !/^\d{1,20}$/.test(messageId)) throw invalid(TEAMS_NOT_A_MEETING);
    // The id is opaque (base64-like): its case is kept, only the fixed wrapper is lowercased.
    const threadId = `19:meeting_${match[1]}@thread.v2`;
    return {
      normalized: `microsoft_teams:${threadId}`,
      path: `/l/meetup-join/${encodeURIComponent(threadId)}/${messageId}`,
      query: [["context", url.searchParams.get("context")]],
    };
  }
  if (lower[0] === "meet" && segments[1] !== undefined && segments.length === 2) {
    // teams.microsoft.com/meet/<id>?p=<passcode> and teams.live.com/meet/<id>?p=<passcode>:
    // the passcode is a credential for the same meeting, not a different meeting.
    const id = segments[1].replace(/\s/g, "");
    if (!/^[A-Za-z0-9]{6,64}$/.test(id))
      throw invalid("That Microsoft Teams link has a malformed meeting id");
    const space = host === "teams.live.com" ? "live" : "meet";
    return {
      normalized: `microsoft_teams:${space}:${id.toLowerCase()}`,
      path: `/meet/${id}`,
      query: [["p", url.searchParams.get("p")]],
    };
  }
  throw invalid(TEAMS_NOT_A_MEETING);
}

// A Webex site or personal room name: letters, digits, dots, dashes, underscores (not only dots).
const WEBEX_NAME = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;

const WEBEX_NOT_A_MEETING =
  "That Webex link is not a meeting link (expected /meet/<name>, /join/<name> or /<site>/j.php?MTID=<id>)";

function normalizeWebex(url: URL, host: string): PlatformLink {
  const segments = pathSegments(url);
  if (segments.length === 0) throw invalid("That Webex link has no meeting path");
  const lower = segments.map((segment) => segment.toLowerCase());
  const last = lower[lower.length - 1];
  // <site>[/<sub>]/j.php?MTID=<id> (and m.php): the meeting is the MTID parameter.
  if (last === "j.php" || last === "m.php") {
    const sites = segments.slice(0, -1);
    if (sites.length > 2 || !sites.every((segment) => WEBEX_NAME.test(segment))) {
      throw invalid(WEBEX_NOT_A_MEETING);
    }
    const mtid = url.searchParams.get("MTID") ?? url.searchParams.get("mtid");
    if (!mtid || !/^[A-Za-z0-9]{8,64}$/.test(mtid))
      throw invalid("That Webex link has no meeting id (MTID)");
    return {
      normalized: `webex:${host}/${lower.join("/")}?mtid=${mtid.toLowerCase()}`,
      path: `/${[...sites, last].join("/")}`,
      query: [["MTID", mtid]],
    };
  }
  // Personal rooms: /meet/<name> and /join/<name>.
  const [first, name] = segments;
  const kind = lower[0];
  if (
    (kind === "meet" || kind === "join") &&
    first !== undefined &&
    name !== undefined &&
    segments.length === 2 &&
    WEBEX_NAME.test(name)
  ) {
    return { normalized: `webex:${host}/${lower.join("/")}`, path: `/${kind}/${name}` };
  }
  throw invalid(WEBEX_NOT_A_MEETING);
}

function canonicalUrl(host: string, link: PlatformLink): string {
  const query = new URLSearchParams();
  for (const [name, value] of link.query ?? []) {
    if (value !== null && value !== "") query.append(name, value);
  }
  const search = query.toString();
  return `https://${host}${link.path}${search ? `?${search}` : ""}`;
}

/**
 * Validates a meeting link and returns its platform, normalized form and canonical link.
 * Throws ValidationError (field `meetingUrl`) for anything unsupported or malformed.
 */
export function normalizeMeetingUrl(input: string): NormalizedMeetingUrl {
  const url = parseUrl(input);
  const host = url.hostname
    .toLowerCase()
    .replace(/^www\./, "")
    .replace(/\.$/, "");

  let platform: MeetingPlatform;
  let link: PlatformLink;
  if (isHostOrSubdomain(host, "zoom.us") || isHostOrSubdomain(host, "zoomgov.com")) {
    platform = "zoom";
    link = normalizeZoom(url);
  } else if (host === "meet.google.com") {
    platform = "google_meet";
    link = normalizeMeet(url);
  } else if (host === "teams.microsoft.com" || host === "teams.live.com") {
    platform = "microsoft_teams";
    link = normalizeTeams(url, host);
  } else if (isHostOrSubdomain(host, "webex.com") && host !== "webex.com") {
    platform = "webex";
    link = normalizeWebex(url, host);
  } else {
    throw invalid(SUPPORTED);
  }
  const canonical = canonicalUrl(host, link);
  if (canonical.length > MAX_URL_LENGTH) {
    throw invalid(`The meeting link is longer than ${MAX_URL_LENGTH} characters`);
  }
  return { platform, normalized: link.normalized, url: canonical };
}
