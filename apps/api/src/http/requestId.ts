import { randomUUID } from "node:crypto";
import type { NextFunction, Request, Response } from "express";

const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

declare module "express-serve-static-core" {
  interface Request {
    /** Correlates logs and the error body; echoed in the X-Request-Id response header. */
    requestId: string;
  }
}

/** Reuses a well-formed incoming X-Request-Id (from a proxy) or makes a new one. */
export function requestId(req: Request, res: Response, next: NextFunction): void {
  const incoming = req.headers["x-request-id"];
  req.requestId =
    typeof incoming === "string" && ACCEPTABLE_ID.test(incoming) ? incoming : randomUUID();
  res.setHeader("X-Request-Id", req.requestId);
  next();
}
