import { Router } from "express";
import swaggerUi from "swagger-ui-express";
import { buildOpenApiDocument } from "../openapi/registry";
import { API_VERSION } from "../version";

/** `/openapi.json` (generated from the registered zod schemas) and a browsable `/docs`. */
export function createDocsRouter(): Router {
  const router = Router();
  let document: ReturnType<typeof buildOpenApiDocument> | undefined;
  // Routes register at module load, before any request: build once, on first use.
  const getDocument = () => (document ??= buildOpenApiDocument(API_VERSION));

  router.get("/openapi.json", (_req, res) => {
    res.json(getDocument());
  });
  let page: ReturnType<typeof swaggerUi.setup> | undefined;
  router.use("/docs", swaggerUi.serve);
  router.get("/docs", (req, res, next) => {
    page ??= swaggerUi.setup(getDocument(), { customSiteTitle: "zigznote API" });
    page(req, res, next);
  });
  return router;
}
