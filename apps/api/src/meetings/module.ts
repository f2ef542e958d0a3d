import type { WriteGuards } from "../http/auth";
import type { RouteDefinition } from "../http/route";
import type { Db } from "@zigznote/database";
import { deleteOrganizationMeetings, type MeetingDeps } from "./meetingService";
import { meetingRoutes } from "./routes";

export interface MeetingsModule {
  routes: RouteDefinition[];
  /** What the meeting service was built with (tools and tests call it directly). */
  deps: MeetingDeps;
  hooks: {
    /** In the transaction that marks the organization deleted: its meetings go with it. */
    onOrganizationDeleted: (db: Db, organizationId: string) => Promise<void>;
  };
}

/** Meetings as one app uses them: their routes, with billing's guard and bots' hook wired in. */
export function createMeetingsModule(
  deps: MeetingDeps & { writeGuards: WriteGuards },
): MeetingsModule {
  const { writeGuards, ...meetings } = deps;
  return {
    deps: meetings,
    routes: meetingRoutes(meetings, writeGuards),
    hooks: {
      async onOrganizationDeleted(db, organizationId) {
        await deleteOrganizationMeetings({ db }, { organizationId, at: meetings.clock.now() });
      },
    },
  };
}
