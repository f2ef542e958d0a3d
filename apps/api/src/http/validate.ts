import { ValidationError } from "@zigznote/shared";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import type { z } from "zod";
import { findUnstorableText, formatTextPath, type UnstorableText } from "../lib/text";
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

const PARTS = ["params", "query", "body"] as const;

/** The request's parts, each read once (Express 5 parses the query string on every read). */
type RawParts = Record<(typeof PARTS)[number], unknown>;

function unstorableIssue(issue: UnstorableText): { path: string; message: string; code: string } {
  const path = formatTextPath(issue.path);
  const what = issue.reason === "nul" ? "a NUL character (U+0000)" : "a lone UTF-16 surrogate";
  const message = issue.isKey
    ? `The field name ${path} contains ${what}`
    : `${path} contains ${what}, which cannot be stored`;
  return { path, message, code: "invalid_characters" };
}

/**
 * The one rule for text of every route, whatever its schemas: no string a caller sends (path
 * parameter, query parameter, JSON body value or key) may contain U+0000 or a lone surrogate,
 * which PostgreSQL cannot store (see lib/text.ts). Checked on the raw input, before any schema,
 * so that no route can forget it.
 */
function rejectUnstorableText(raw: RawParts): ValidationError | undefined {
  const fields = PARTS.flatMap((part) => findUnstorableText(raw[part]).map(unstorableIssue));
  if (fields.length === 0) return undefined;
  return new ValidationError("Text must not contain NUL characters or lone surrogates", {
    fields,
  });
}

/**
 * Refuses unstorable text anywhere in the request, then parses body, query and params with
 * zod; any failure is a 400 with every field issue.
 */
export function validate(schemas: RequestSchemas): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const raw: RawParts = { params: req.params, query: req.query, body: req.body };
    const unstorable = rejectUnstorableText(raw);
    if (unstorable) {
      next(unstorable);
      return;
    }
    const valid: Request["valid"] = {};
    for (const part of PARTS) {
      const schema = schemas[part];
      if (!schema) continue;
      const result = schema.safeParse(raw[part] ?? {});
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
