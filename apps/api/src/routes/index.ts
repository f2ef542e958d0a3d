import { Router } from "express";
import type { AppContext } from "../context";

/**
 * The versioned API under `/api/v1`. Each resource has its own router file; mount it here.
 */
export function createApiRouter(_ctx: AppContext): Router {
  const router = Router();
  return router;
}
