import type { StorageObject } from "@zigznote/database";
import { z } from "../http/openapi";
import { RECORDING_CONTENT_TYPES } from "./recordingService";

/** Shapes of `/api/v1/meetings/:id/recording`. The upload itself is a raw media body. */

export const RecordingSchema = z
  .object({
    id: z.uuid(),
    meetingId: z.uuid(),
    contentType: z.enum(RECORDING_CONTENT_TYPES),
    sizeBytes: z.number().int().nonnegative(),
    sha256: z.string().nullable(),
    source: z.enum(["upload", "recall"]),
    createdAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Recording", {
    example: {
      id: "7d9f2c1e-4b3a-4e8f-9a6b-1c2d3e4f5a60",
      meetingId: "5f0c6f8e-3b0b-4c84-9d53-2a4c1f6e7a10",
      contentType: "video/mp4",
      sizeBytes: 48213577,
      sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      source: "upload",
      createdAt: "2026-11-30T16:02:11.000Z",
    },
  });

export type RecordingResponse = z.infer<typeof RecordingSchema>;

/** The public view of a stored recording: never its storage key. */
export function toRecordingResponse(object: StorageObject): RecordingResponse {
  return {
    id: object.id,
    meetingId: object.meetingId,
    contentType: object.contentType as RecordingResponse["contentType"],
    sizeBytes: Number(object.sizeBytes),
    sha256: object.sha256,
    source: object.source,
    createdAt: object.createdAt.toISOString(),
  };
}

/** The raw upload body, for the OpenAPI document (one entry per accepted media type). */
export const recordingBodyContent = Object.fromEntries(
  RECORDING_CONTENT_TYPES.map((type) => [
    type,
    { schema: z.string().openapi({ type: "string", format: "binary" }) },
  ]),
);
