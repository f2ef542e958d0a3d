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
  .openapi("Recording");

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
