import { PassThrough } from "node:stream";
import { BadRequestError, PayloadTooLargeError, RangeNotSatisfiableError } from "@zigznote/shared";
import type { Request } from "express";
import type { WriteGuards } from "../http/auth";
import { z } from "../http/openapi";
import { defineRoute, type RouteDefinition } from "../http/route";
import { MeetingIdParams } from "../meetings";
import {
  deleteRecording,
  emptyRecording,
  findRecording,
  parseRecordingContentType,
  readRecording,
  replaceRecording,
  unsupportedRecordingType,
  type RecordingDeps,
} from "./recordingService";
import type { DirectUploadDeps } from "./directUploads";
import { recordingBodyContent, RecordingSchema, toRecordingResponse } from "./schemas";
import { directUploadRoutes } from "./uploadRoutes";
import type { ByteRange } from "./storage";

const tag = "Recordings";

const EXTENSIONS: Record<string, string> = {
  "video/mp4": "mp4",
  "video/webm": "webm",
  "video/quicktime": "mov",
  "audio/mpeg": "mp3",
  "audio/mp4": "m4a",
  "audio/wav": "wav",
  "audio/webm": "weba",
  "audio/ogg": "ogg",
};

/**
 * The request body as a stream that storage may destroy without destroying the request: when
 * the upload is refused half-way, the connection must survive long enough to carry the 413.
 * A client that disconnects mid-upload fails the stream, so nothing is stored.
 */
function uploadStream(req: Request): { body: PassThrough; detach: () => void } {
  const body = new PassThrough();
  const abort = () => {
    if (!req.complete) {
      body.destroy(new BadRequestError("The upload was interrupted", { code: "UPLOAD_ABORTED" }));
    }
  };
  req.on("close", abort);
  req.on("error", abort);
  req.pipe(body);
  return {
    body,
    detach: () => {
      req.off("close", abort);
      req.off("error", abort);
      req.unpipe(body);
    },
  };
}

/** How long a refused upload's remaining body is read and discarded before the socket is cut. */
const REFUSED_UPLOAD_DRAIN_MS = 5000;

/**
 * After refusing an upload whose body is not fully read: discard the rest for a while, then cut
 * the connection. Closing at once would reset the socket under a client that is still sending,
 * and a reset can make it lose the error answer it has not read yet.
 */
function discardRestOfUpload(req: Request): void {
  if (req.complete) return;
  const timer = setTimeout(() => req.socket.destroy(), REFUSED_UPLOAD_DRAIN_MS);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.once("end", stop);
  req.once("close", stop);
  req.resume();
}

/** True when `If-None-Match` names `etag` (or `*`): the client's copy is current. */
function isCurrentCopy(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch
    .split(",")
    .map((tag) => tag.trim().replace(/^W\//, ""))
    .some((tag) => tag === "*" || tag === etag);
}

/** The single byte range to serve, or undefined for the whole object (416 when unsatisfiable). */
function requestedRange(
  req: Request,
  size: number,
  etag: string | undefined,
): ByteRange | undefined {
  if (!req.get("range") || size === 0) return undefined;
  // If-Range names the version the client holds; another version means the whole object.
  const ifRange = req.get("if-range");
  if (ifRange !== undefined && ifRange !== etag) return undefined;
  const parsed = req.range(size, { combine: true });
  if (parsed === -1) {
    throw new RangeNotSatisfiableError(size);
  }
  // Malformed, or several ranges: RFC 9110 lets a server answer with the whole object.
  if (parsed === -2 || parsed === undefined || parsed.type !== "bytes" || parsed.length !== 1) {
    return undefined;
  }
  return parsed[0];
}

/** What a download reads besides the path (documented; `requestedRange` parses them). */
const DownloadHeaders = z.object({
  range: z
    .string()
    .optional()
    .openapi({
      description:
        "One byte range, `bytes=<start>-<end>`, `bytes=<start>-` or `bytes=-<suffix length>`: " +
        "206 with that part; outside the recording, 416 with `Content-Range: bytes */<size>`. " +
        "Several ranges or another unit: the whole recording (200).",
      example: "bytes=0-1023",
    }),
  "if-range": z.string().optional().openapi({
    description: "An ETag: the Range applies only while the recording is still that version",
  }),
  "if-none-match": z.string().optional().openapi({
    description: "ETags the client holds: 304 with no body when one is current",
  }),
});

const ETAG_HEADER = {
  description: "The recording's version (its SHA-256), for If-None-Match and If-Range",
  schema: { type: "string" as const },
};

function downloadHeaders(options: { isPartial?: boolean } = {}) {
  const text = { type: "string" as const };
  return {
    ETag: ETAG_HEADER,
    "Accept-Ranges": { description: "`bytes`", schema: text },
    "Content-Length": {
      description: "Bytes in this response",
      schema: { type: "integer" as const },
    },
    "Content-Disposition": { description: "`attachment` with a file name", schema: text },
    ...(options.isPartial
      ? {
          "Content-Range": {
            description: "`bytes <start>-<end>/<size>`",
            required: true,
            schema: text,
          },
        }
      : {}),
  };
}

/**
 * The upload's description: how to send one with curl (a test runs this very command), and why
 * `curl -T file` alone is refused.
 */
export const UPLOAD_DESCRIPTION = `Send the file's bytes as the body (streamed: any size up to the server's limit) and its media type in \`Content-Type\`, one of the types listed below. The body is the file itself, not a multipart form.

\`\`\`sh
curl -T standup.mp4 -H "Content-Type: video/mp4" \\
  -H "Authorization: Bearer $ZIGZNOTE_API_KEY" \\
  "$ZIGZNOTE_URL/api/v1/meetings/$MEETING_ID/recording"
\`\`\`

\`curl -T\` uploads with PUT but sends no \`Content-Type\`: without the \`-H "Content-Type: ..."\` line the answer is 415 \`UNSUPPORTED_MEDIA_TYPE\` (\`details.accepted\` lists the types) and nothing is stored.

201 for the meeting's first recording, 200 when it replaces one (the old file is deleted after the new one is committed). An empty body (none, \`Content-Length: 0\`, or a chunked body that ends without a byte) is refused with 400 \`EMPTY_RECORDING\`; the stored recording stays as it was.`;

/** `?redirect=false`: the link as JSON rather than a redirect (object storage). */
const DownloadQuery = z.object({
  redirect: z
    .enum(["true", "false"])
    .optional()
    .openapi({
      description:
        "With object storage: `false` answers `{ url, expiresAt }` (200) instead of the 302 " +
        "redirect. Ignored on local storage, which always streams.",
    }),
});

const DownloadLinkSchema = z
  .object({
    url: z.url().openapi({ description: "Presigned GET URL of the recording in the object store" }),
    expiresAt: z.string().openapi({
      format: "date-time",
      description: "The URL stops working then (STORAGE_URL_TTL_SECONDS after it was signed)",
    }),
  })
  .openapi("RecordingDownloadLink");

/** What the recording routes need: the recordings' deps, the limits and the URLs' lifetime. */
export type RecordingRouteDeps = RecordingDeps & DirectUploadDeps;

/** `/api/v1/meetings/:id/recording`: the meeting's recording, streamed both ways. */
export function recordingRoutes(
  deps: RecordingRouteDeps,
  writeGuards: WriteGuards,
): RouteDefinition[] {
  return [
    defineRoute({
      method: "put",
      path: "/api/v1/meetings/:id/recording",
      operationId: "uploadRecording",
      tag,
      summary: "Upload the meeting's recording (raw media body, streamed; replaces an earlier one)",
      description:
        `${UPLOAD_DESCRIPTION}\n\nThe body is streamed into storage as it arrives (into a ` +
        "multipart upload with object storage): memory stays flat, the size limit " +
        "(RECORDING_MAX_BYTES) is enforced while streaming (413), and an interrupted or refused " +
        "upload leaves nothing behind. For large files on object storage, " +
        "`POST .../recording/uploads` sends the bytes to the store directly.",
      scope: "meetings:write",
      write: writeGuards["recording.create"],
      params: MeetingIdParams,
      rawBody: { required: true, content: recordingBodyContent },
      responses: {
        200: { description: "Stored, replacing the earlier recording", schema: RecordingSchema },
        201: { description: "Stored", schema: RecordingSchema },
      },
      errors: [
        "NOT_FOUND",
        "EMPTY_RECORDING",
        "UPLOAD_ABORTED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "STORAGE_UNAVAILABLE",
      ],
      errorExamples: {
        UNSUPPORTED_MEDIA_TYPE: {
          error: {
            code: "UNSUPPORTED_MEDIA_TYPE",
            message: unsupportedRecordingType(undefined).message,
            details: unsupportedRecordingType(undefined).details ?? {},
          },
          requestId: "0b6a7f2e-6f1d-4c3a-9e5b-2d8f1c7a4e90",
        },
      },
      async handler({ params, auth }, req) {
        const { maxBytes } = deps;
        let detach: (() => void) | undefined;
        try {
          // No body at all (no length, not chunked) or a declared length of 0: nothing to store.
          const length = req.get("content-length");
          if (
            length === "0" ||
            (length === undefined && req.get("transfer-encoding") === undefined)
          ) {
            throw emptyRecording();
          }
          const contentType = parseRecordingContentType(req.get("content-type"));
          const declared = Number(length ?? Number.NaN);
          if (declared > maxBytes) {
            throw new PayloadTooLargeError(
              `Recording is larger than the limit of ${maxBytes} bytes`,
              { details: { maxBytes, contentLength: declared } },
            );
          }
          const upload = uploadStream(req);
          detach = upload.detach;
          const { object, replaced } = await replaceRecording(deps, {
            organizationId: auth.organizationId,
            meetingId: params.id,
            body: upload.body,
            contentType,
            maxBytes,
          });
          return { status: replaced > 0 ? 200 : 201, body: toRecordingResponse(object) };
        } catch (error) {
          detach?.();
          discardRestOfUpload(req);
          throw error;
        } finally {
          detach?.();
        }
      },
    }),

    defineRoute({
      method: "get",
      path: "/api/v1/meetings/:id/recording",
      operationId: "downloadRecording",
      tag,
      summary: "Download the meeting's recording (supports a single byte Range)",
      description:
        "Where the server keeps recordings in object storage (S3), the answer is `302` to a " +
        "presigned URL of the store, valid for STORAGE_URL_TTL_SECONDS (default 300 s), that " +
        "serves the bytes with the recording's `Content-Type` and a `Content-Disposition` file " +
        "name; the store honours `Range` itself (send it again to the `Location`). With " +
        "`?redirect=false` the answer is that link as JSON, `{ url, expiresAt }`. On local " +
        "storage the API streams the bytes: `Range`, `ETag`, `If-None-Match` (304) and " +
        "`If-Range` as below. Either way, a current `If-None-Match` answers 304.",
      scope: "meetings:read",
      params: MeetingIdParams,
      query: DownloadQuery,
      headers: DownloadHeaders,
      responses: {
        200: {
          description:
            "The recording (local storage), or its link with `?redirect=false` (object storage)",
          content: {
            ...recordingBodyContent,
            "application/json": { schema: DownloadLinkSchema },
          },
          headers: downloadHeaders(),
        },
        206: {
          description: "The requested byte range",
          content: recordingBodyContent,
          headers: downloadHeaders({ isPartial: true }),
        },
        302: {
          description:
            "Object storage: the recording is at `Location`, a presigned URL of the store " +
            "(valid for STORAGE_URL_TTL_SECONDS; the store serves Range requests)",
          headers: {
            Location: {
              description: "Presigned GET URL of the recording",
              required: true,
              schema: { type: "string" as const },
            },
          },
        },
        304: {
          description: "Not modified: the client's copy (If-None-Match) is current",
          headers: { ETag: ETAG_HEADER },
        },
      },
      errors: ["NOT_FOUND", "RANGE_NOT_SATISFIABLE", "STORAGE_UNAVAILABLE"],
      async handler({ params, query, auth }, req) {
        const { id } = params;
        const object = await findRecording(deps, {
          organizationId: auth.organizationId,
          meetingId: id,
        });
        const size = Number(object.sizeBytes);
        const etag = object.sha256 ? `"${object.sha256}"` : undefined;
        if (etag && isCurrentCopy(req.get("if-none-match"), etag)) {
          return { status: 304, headers: { ETag: etag, "Cache-Control": "private, no-cache" } };
        }
        const filename = `recording-${id}.${EXTENSIONS[object.contentType] ?? "bin"}`;
        if (deps.storage.presigned) {
          // The store serves the bytes (and Range): the API only signs the link.
          const url = await deps.storage.presigned.downloadUrl(object.key, {
            contentType: object.contentType,
            filename,
            expiresInSeconds: deps.urlTtlSeconds,
          });
          const expiresAt = new Date(deps.now().getTime() + deps.urlTtlSeconds * 1000);
          const headers = { "Cache-Control": "private, no-store" };
          if (query.redirect === "false") {
            return { status: 200, body: { url, expiresAt: expiresAt.toISOString() }, headers };
          }
          return { status: 302, redirect: url, headers };
        }
        const range = requestedRange(req, size, etag);
        const { body, sizeBytes } = await readRecording(deps, { object, range });
        if (sizeBytes !== size) {
          body.destroy();
          throw new Error(
            `stored size ${sizeBytes} of ${object.id} differs from its row (${size})`,
          );
        }
        const answer = {
          stream: body,
          headers: {
            "Content-Type": object.contentType,
            "Content-Length": String(range ? range.end - range.start + 1 : size),
            "Accept-Ranges": "bytes",
            ...(range ? { "Content-Range": `bytes ${range.start}-${range.end}/${size}` } : {}),
            ...(etag ? { ETag: etag } : {}),
            "Cache-Control": "private, no-cache",
            "Content-Disposition": `attachment; filename="${filename}"`,
          },
          // Headers are gone: the client sees a cut-off body (or it hung up itself).
          onInterrupted(error: unknown) {
            deps.logger.info({ err: error, meetingId: id }, "recording download did not complete");
          },
        };
        return range ? { status: 206, ...answer } : { status: 200, ...answer };
      },
    }),

    defineRoute({
      method: "delete",
      path: "/api/v1/meetings/:id/recording",
      operationId: "deleteRecording",
      tag,
      summary: "Delete the meeting's recording",
      scope: "meetings:write",
      params: MeetingIdParams,
      responses: { 204: { description: "Deleted" } },
      errors: ["NOT_FOUND", "STORAGE_UNAVAILABLE"],
      async handler({ params, auth }) {
        await deleteRecording(deps, { organizationId: auth.organizationId, meetingId: params.id });
        return { status: 204 };
      },
    }),

    ...directUploadRoutes(deps, writeGuards),
  ];
}
