import type { WriteGuards } from "../http/auth";
import { z } from "../http/openapi";
import { defineRoute, type RouteDefinition } from "../http/route";
import { MeetingIdParams } from "../meetings";
import {
  completeDirectUpload,
  createDirectUpload,
  getDirectUpload,
  type DirectUploadDeps,
  type DirectUploadView,
} from "./directUploads";
import { RECORDING_CONTENT_TYPES } from "./recordingService";
import { RecordingSchema, toRecordingResponse } from "./schemas";

/** Direct uploads: `/api/v1/meetings/:id/recording/uploads[/:uploadId[/complete]]`. */

const tag = "Recordings";

const UploadParams = MeetingIdParams.extend({
  uploadId: z.uuid().openapi({ param: { name: "uploadId", in: "path" } }),
});

const CreateUploadBody = z
  .object({
    contentType: z.enum(RECORDING_CONTENT_TYPES).openapi({
      description: "The recording's media type (as a PUT upload's Content-Type)",
    }),
    sizeBytes: z
      .number()
      .int()
      .min(1)
      .openapi({ description: "The recording's exact size: each part's length is signed" }),
  })
  .strict()
  .openapi("CreateRecordingUpload");

const UploadPartSchema = z
  .object({
    partNumber: z.number().int().min(1),
    url: z.url().openapi({ description: "Presigned URL: `PUT` this part's bytes there" }),
    offset: z.number().int().nonnegative().openapi({ description: "First byte of the part" }),
    sizeBytes: z
      .number()
      .int()
      .min(1)
      .openapi({ description: "Bytes of the part (its `Content-Length`)" }),
    headers: z.record(z.string(), z.string()).openapi({
      description: "Headers the PUT must carry besides Content-Length (they are signed)",
    }),
    isUploaded: z
      .boolean()
      .openapi({ description: "The store already holds this part with the right size" }),
  })
  .openapi("RecordingUploadPart");

const UploadSchema = z
  .object({
    id: z.uuid(),
    meetingId: z.uuid(),
    status: z.enum(["pending", "completed", "aborted"]),
    contentType: z.enum(RECORDING_CONTENT_TYPES),
    sizeBytes: z.number().int().min(1),
    partSizeBytes: z.number().int().min(1),
    expiresAt: z.string().openapi({
      format: "date-time",
      description: "Complete the upload before then; it is aborted 24 h after it began",
    }),
    parts: z.array(UploadPartSchema).openapi({
      description: "While pending: every part with a fresh URL (empty once closed)",
    }),
    urlsExpireAt: z.string().nullable().openapi({
      format: "date-time",
      description:
        "When the part URLs stop working (STORAGE_URL_TTL_SECONDS); GET the upload for new ones",
    }),
    createdAt: z.string().openapi({ format: "date-time" }),
  })
  .openapi("RecordingUpload");

type UploadResponse = z.infer<typeof UploadSchema>;

function toUploadResponse(view: DirectUploadView): UploadResponse {
  const { upload } = view;
  return {
    id: upload.id,
    meetingId: upload.meetingId,
    status: upload.status,
    contentType: upload.contentType as UploadResponse["contentType"],
    sizeBytes: Number(upload.sizeBytes),
    partSizeBytes: Number(upload.partSizeBytes),
    expiresAt: upload.expiresAt.toISOString(),
    parts: view.parts,
    urlsExpireAt: view.urlsExpireAt?.toISOString() ?? null,
    createdAt: upload.createdAt.toISOString(),
  };
}

const DIRECT_UPLOAD_GUIDE =
  "Direct upload (object storage only; local storage answers 503 `PROVIDER_NOT_CONFIGURED`): " +
  "1. `POST .../recording/uploads` with `{ contentType, sizeBytes }`; " +
  "2. `PUT` each part's bytes (`offset`, `sizeBytes`) to its `url` with its `headers` (the " +
  "bytes go to the store, not through the API; the parts of a multipart upload, one for a " +
  "recording below the part size, whose URLs write only while it is pending); URLs last " +
  "STORAGE_URL_TTL_SECONDS, `GET .../uploads/{uploadId}` signs new ones and " +
  "says which parts the store holds; " +
  "3. `POST .../uploads/{uploadId}/complete`: the API checks the object and records it as a " +
  "`PUT .../recording` would (usage, replacing the earlier recording). An upload that is not " +
  "completed is aborted 24 h after it began, its parts deleted.";

/** The direct upload routes; see `directUploads.ts`. */
export function directUploadRoutes(
  deps: DirectUploadDeps,
  writeGuards: WriteGuards,
): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/api/v1/meetings/:id/recording/uploads",
      operationId: "createRecordingUpload",
      tag,
      summary: "Start a direct upload of the meeting's recording to object storage",
      description: DIRECT_UPLOAD_GUIDE,
      scope: "meetings:write",
      write: writeGuards["recording.create"],
      params: MeetingIdParams,
      body: CreateUploadBody,
      responses: {
        201: { description: "Started: PUT the parts, then complete", schema: UploadSchema },
      },
      errors: ["NOT_FOUND", "PAYLOAD_TOO_LARGE", "PROVIDER_NOT_CONFIGURED", "STORAGE_UNAVAILABLE"],
      async handler({ params, body, auth }) {
        const view = await createDirectUpload(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
          contentType: body.contentType,
          sizeBytes: body.sizeBytes,
        });
        return { status: 201, body: toUploadResponse(view) };
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/meetings/:id/recording/uploads/:uploadId",
      operationId: "getRecordingUpload",
      tag,
      summary: "A direct upload: its status, and fresh part URLs while it is pending",
      description: DIRECT_UPLOAD_GUIDE,
      scope: "meetings:write",
      params: UploadParams,
      responses: { 200: { description: "The upload", schema: UploadSchema } },
      errors: ["NOT_FOUND", "PROVIDER_NOT_CONFIGURED", "STORAGE_UNAVAILABLE"],
      async handler({ params, auth }) {
        const view = await getDirectUpload(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
          uploadId: params.uploadId,
        });
        return { status: 200, body: toUploadResponse(view) };
      },
    }),

    defineRoute({
      method: "post",
      path: "/api/v1/meetings/:id/recording/uploads/:uploadId/complete",
      operationId: "completeRecordingUpload",
      tag,
      summary: "Complete a direct upload: the object becomes the meeting's recording",
      description:
        DIRECT_UPLOAD_GUIDE +
        " Completing checks that the store holds every part with its declared size (409 " +
        "`UPLOAD_INCOMPLETE` or `UPLOAD_SIZE_MISMATCH`: send those parts, then complete " +
        "again), the object's size against the declared one and RECORDING_MAX_BYTES, and " +
        "reads the object once inside the store for its SHA-256. Of concurrent completions one " +
        "records the recording; the others answer 409 `UPLOAD_CLOSED`.",
      scope: "meetings:write",
      write: writeGuards["recording.create"],
      params: UploadParams,
      responses: {
        200: { description: "Recorded, replacing the earlier recording", schema: RecordingSchema },
        201: { description: "Recorded", schema: RecordingSchema },
      },
      errors: [
        "NOT_FOUND",
        "UPLOAD_INCOMPLETE",
        "UPLOAD_SIZE_MISMATCH",
        "UPLOAD_CLOSED",
        "PAYLOAD_TOO_LARGE",
        "PROVIDER_NOT_CONFIGURED",
        "STORAGE_UNAVAILABLE",
      ],
      async handler({ params, auth }) {
        const { object, replaced } = await completeDirectUpload(deps, {
          organizationId: auth.organizationId,
          meetingId: params.id,
          uploadId: params.uploadId,
        });
        return { status: replaced > 0 ? 200 : 201, body: toRecordingResponse(object) };
      },
    }),
  ];
}
