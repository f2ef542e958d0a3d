import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { z } from "zod";
import { zodToValidationError } from "./errorHandler";

export interface RequestSchemas {
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
}

declare module "express-serve-static-core" {
  interface Request {
    /** What `validate()` parsed: handlers read this, never the raw body/query/params. */
    valid: { body?: unknown; query?: unknown; params?: unknown };
  }
}

/** Parses body, query and params with zod; any failure is a 400 with every field issue. */
export function validate(schemas: RequestSchemas): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const valid: Request["valid"] = {};
    for (const part of ["params", "query", "body"] as const) {
      const schema = schemas[part];
      if (!schema) continue;
      const result = schema.safeParse(req[part] ?? {});
      if (!result.success) {
        next(zodToValidationError(result.error));
        return;
      }
      valid[part] = result.data;
    }
    req.valid = valid;
    next();
  };
}
