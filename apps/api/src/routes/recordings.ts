import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AppError, BadRequestError, PayloadTooLargeError } from "@zigznote/shared";
import { Router, type Request } from "express";
import type { AppContext } from "../context";
import { requireWriteAccess } from "../middleware/billingGuard";
import { requireScope } from "../middleware/auth";
import { validate, validated } from "../middleware/validate";
import { bearerAuth, errorResponses, openApiRegistry } from "../openapi/registry";
import { appServicesFor } from "../services/appServices";
import {
  deleteRecording,
  findRecording,
  parseRecordingContentType,
  readRecording,
  replaceRecording,
} from "../services/recordingService";
import type { ByteRange } from "../services/storageService";
import { MeetingIdParams } from "./meetings.schemas";
import { recordingBodyContent, RecordingSchema, toRecordingResponse } from "./recordings.schemas";

const security = [{ [bearerAuth.name]: [] }];
const recordingContent = { "application/json": { schema: RecordingSchema } };

openApiRegistry.registerPath({
  method: "put",
  path: "/api/v1/meetings/{id}/recording",
  summary: "Upload the meeting's recording (raw media body, streamed; replaces an earlier one)",
  security,
  request: { params: MeetingIdParams, body: { required: true, content: recordingBodyContent } },
  responses: {
    200: { description: "Stored, replacing the earlier recording", content: recordingContent },
    201: { description: "Stored", content: recordingContent },
    ...errorResponses(400, 401, 402, 403, 404, 413, 415, 429),
  },
});

openApiRegistry.registerPath({
  method: "get",
  path: "/api/v1/meetings/{id}/recording",
  summary: "Download the meeting's recording (supports a single byte Range)",
  security,
  request: { params: MeetingIdParams },
  responses: {
    200: { description: "The recording", content: recordingBodyContent },
    206: { description: "The requested byte range", content: recordingBodyContent },
    ...errorResponses(401, 403, 404, 416, 429),
  },
});

openApiRegistry.registerPath({
  method: "delete",
  path: "/api/v1/meetings/{id}/recording",
  summary: "Delete the meeting's recording",
  security,
  request: { params: MeetingIdParams },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses(401, 403, 404, 429),
  },
});

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
      body.destroy(new BadRequestError("The upload was interrupted", undefined, "UPLOAD_ABORTED"));
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
    throw new AppError(416, "RANGE_NOT_SATISFIABLE", "The requested range is not satisfiable", {
      sizeBytes: size,
    });
  }
  // Malformed, or several ranges: RFC 9110 lets a server answer with the whole object.
  if (parsed === -2 || parsed === undefined || parsed.type !== "bytes" || parsed.length !== 1) {
    return undefined;
  }
  return parsed[0];
}

/** `/api/v1/meetings/:id/recording`: the meeting's recording, streamed both ways. */
export function createRecordingsRouter(ctx: AppContext): Router {
  const router = Router({ mergeParams: true });
  const { recordings } = appServicesFor(ctx);

  router.put(
    "/",
    requireScope("meetings:write"),
    requireWriteAccess(ctx, "recording.create"),
    validate({ params: MeetingIdParams }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      const maxBytes = ctx.config.RECORDING_MAX_BYTES;
      let detach: (() => void) | undefined;
      try {
        const contentType = parseRecordingContentType(req.get("content-type"));
        const declared = Number(req.get("content-length") ?? Number.NaN);
        if (declared > maxBytes) {
          throw new PayloadTooLargeError(
            `Recording is larger than the limit of ${maxBytes} bytes`,
            { maxBytes, contentLength: declared },
          );
        }
        const upload = uploadStream(req);
        detach = upload.detach;
        const { object, replaced } = await replaceRecording(recordings, {
          organizationId: req.auth.organizationId,
          meetingId: id,
          body: upload.body,
          contentType,
          maxBytes,
        });
        res.status(replaced > 0 ? 200 : 201).json(toRecordingResponse(object));
      } catch (error) {
        detach?.();
        discardRestOfUpload(req);
        throw error;
      } finally {
        detach?.();
      }
    },
  );

  router.get(
    "/",
    requireScope("meetings:read"),
    validate({ params: MeetingIdParams }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      const object = await findRecording(recordings, req.auth.organizationId, id);
      const size = Number(object.sizeBytes);
      const etag = object.sha256 ? `"${object.sha256}"` : undefined;
      const range = requestedRange(req, size, etag);
      const { body, sizeBytes } = await readRecording(recordings, object, range);
      if (sizeBytes !== size) {
        body.destroy();
        throw new Error(`stored size ${sizeBytes} of ${object.id} differs from its row (${size})`);
      }
      res.status(range ? 206 : 200);
      res.setHeader("Content-Type", object.contentType);
      res.setHeader("Content-Length", String(range ? range.end - range.start + 1 : size));
      res.setHeader("Accept-Ranges", "bytes");
      if (range) res.setHeader("Content-Range", `bytes ${range.start}-${range.end}/${size}`);
      if (etag) res.setHeader("ETag", etag);
      res.setHeader("Cache-Control", "private, no-cache");
      res.setHeader(
        "Content-Disposition",
        `attachment; filename="recording-${id}.${EXTENSIONS[object.contentType] ?? "bin"}"`,
      );
      try {
        await pipeline(body, res);
      } catch (error) {
        // Headers are gone: the client sees a cut-off body (or it hung up itself).
        ctx.logger.info({ err: error, meetingId: id }, "recording download did not complete");
      }
    },
  );

  router.delete(
    "/",
    requireScope("meetings:write"),
    validate({ params: MeetingIdParams }),
    async (req, res) => {
      const { id } = validated(req, "params", MeetingIdParams);
      await deleteRecording(recordings, req.auth.organizationId, id);
      res.status(204).end();
    },
  );

  return router;
}
