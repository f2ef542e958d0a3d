import {
  AppError,
  BadRequestError,
  ConflictError,
  InternalServerError,
  isAppError,
  NotFoundError,
  PayloadTooLargeError,
  PROVIDER_NOT_CONFIGURED,
  ServiceUnavailableError,
  ValidationError,
} from "@zigznote/shared";
import { isDatabaseUnavailable, Prisma, uniqueViolationOf } from "@zigznote/database";
import type { ErrorRequestHandler, RequestHandler } from "express";
import { ZodError } from "zod";
import type { Logger } from "../lib/logger";

/**
 * Field issues of a ZodError as `{ path, message, code }`, path dotted (`items.0.name`). An
 * unknown key is an issue of its own, at its own path (zod reports them together, at the object).
 */
export function zodToValidationError(error: ZodError): ValidationError {
  return new ValidationError(undefined, {
    fields: error.issues.flatMap((issue): { path: string; message: string; code: string }[] =>
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => ({
            path: [...issue.path, key].map(String).join("."),
            message: `Unknown field "${key}"`,
            code: issue.code,
          }))
        : [
            {
              path: issue.path.map(String).join(".") || "(root)",
              message: issue.message,
              code: issue.code,
            },
          ],
    ),
  });
}

/** Which unique constraint was hit, as the classic engine or a driver adapter reports it. */
function uniqueViolationDetails(error: unknown): Record<string, unknown> | undefined {
  const violation = uniqueViolationOf(error);
  if (violation?.fields) return { fields: violation.fields };
  if (violation?.constraint) return { constraint: violation.constraint };
  return undefined;
}

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
}

/** Whether a body the JSON parser refused is JSON after all: a string, number, true or null. */
function isJsonScalar(body: unknown): boolean {
  if (typeof body !== "string") return false;
  try {
    JSON.parse(body);
    return true;
  } catch {
    return false;
  }
}

/** Maps anything thrown to an AppError; unknown errors become a generic 500. */
export function toAppError(error: unknown): AppError {
  if (isAppError(error)) return error;
  if (error instanceof ZodError) return zodToValidationError(error);
  if (isDatabaseUnavailable(error)) {
    return new ServiceUnavailableError("The database is not answering; retry shortly", {
      code: "DATABASE_UNAVAILABLE",
      retryAfterSeconds: 5,
    });
  }
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    if (error.code === "P2002") {
      return new ConflictError("A resource with the same unique values already exists", {
        details: uniqueViolationDetails(error),
      });
    }
    if (error.code === "P2025") return new NotFoundError();
  }
  // Express's router could not percent-decode a path parameter (`%ED%A0%80`, `%E0%A4%A`).
  if (error instanceof URIError) {
    return new BadRequestError("The URL path is not valid percent-encoded UTF-8", {
      code: "INVALID_URL_ENCODING",
    });
  }
  const httpError = error as HttpLikeError | undefined;
  if (httpError && typeof httpError === "object") {
    // body-parser / raw-body errors
    if (httpError.type === "entity.too.large") {
      const { limit } = error as { limit?: unknown };
      return typeof limit === "number"
        ? new PayloadTooLargeError(`Request body is larger than the limit of ${limit} bytes`, {
            details: { maxBytes: limit },
          })
        : new PayloadTooLargeError();
    }
    if (httpError.type === "entity.parse.failed") {
      return new BadRequestError(
        isJsonScalar((error as { body?: unknown }).body)
          ? "Request body must be a JSON object"
          : "Request body is not valid JSON",
        { code: "INVALID_JSON" },
      );
    }
    const status = httpError.status ?? httpError.statusCode;
    if (httpError.expose === true && typeof status === "number" && status >= 400 && status < 500) {
      return new AppError(status, (error as Error).message, {
        code: status === 415 ? "UNSUPPORTED_MEDIA_TYPE" : "BAD_REQUEST",
      });
    }
  }
  return new InternalServerError();
}

/** The last middleware: every error leaves as `{ error: { code, message, details? }, requestId }`. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const appError = toAppError(error);
    // 4xx are logged by the request logger at info; 5xx get the error and its stack here, but a
    // provider this deployment does not configure is the operator's to fix: one warning naming
    // the variables to set, no stack.
    if (appError.code === PROVIDER_NOT_CONFIGURED) {
      logger.warn(
        { requestId: req.requestId, method: req.method, path: req.path, ...appError.details },
        appError.message,
      );
    } else if (appError.status >= 500) {
      logger.error(
        { err: error, requestId: req.requestId, method: req.method, path: req.path },
        "request failed",
      );
    }
    // The request log line carries the code.
    res.locals.errorCode = appError.code;
    for (const [name, value] of Object.entries(appError.headers())) res.setHeader(name, value);
    res.status(appError.status).json(appError.toBody(req.requestId));
  };
}

/** Unmatched routes: 404 in the standard error shape. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(`No route for ${req.method} ${req.path}`, { code: "ROUTE_NOT_FOUND" }));
};
