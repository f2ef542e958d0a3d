import type { WriteGuards } from "../http/auth";
import type { RouteDefinition } from "../http/route";
import type { MeetingDeps } from "./meetingService";
import { meetingRoutes } from "./routes";

export interface MeetingsModule {
  routes: RouteDefinition[];
  /** What the meeting service was built with (tools and tests call it directly). */
  deps: MeetingDeps;
}

/** Meetings as one app uses them: their routes, with billing's guard and bots' hook wired in. */
export function createMeetingsModule(
  deps: MeetingDeps & { writeGuards: WriteGuards },
): MeetingsModule {
  const { writeGuards, ...meetings } = deps;
  return { deps: meetings, routes: meetingRoutes(meetings, writeGuards) };
}
