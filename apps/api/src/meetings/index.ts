/** Meetings: an organization's calls, their links (normalized per platform) and their pages. */
export {
  createMeeting,
  deleteMeeting,
  encodeMeetingCursor,
  getMeeting,
  listMeetings,
  lockMeeting,
  updateMeeting,
  type CreateMeetingInput,
  type ListMeetingsInput,
  type MeetingDeps,
  type MeetingPage,
  type MeetingPatch,
  type MeetingRef,
  type UpdateMeetingInput,
} from "./meetingService";
export { normalizeMeetingUrl, type NormalizedMeetingUrl } from "./meetingUrl";
export { meetingRoutes } from "./routes";
export { MeetingIdParams, toMeetingResponse } from "./schemas";
export { createMeetingsModule, type MeetingsModule } from "./module";
