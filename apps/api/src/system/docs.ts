import { Router } from "express";
import swaggerUi from "swagger-ui-express";
import type { OpenApiDocument } from "../http/openapi";
import { refuseOtherMethods } from "../http/route";

/**
 * `/openapi.json` (generated from the app's route declarations) and a browsable `/docs`. The
 * document is built on first use.
 */
export function createDocsRouter(buildDocument: () => OpenApiDocument): Router {
  const router = Router();
  let document: OpenApiDocument | undefined;
  const getDocument = () => (document ??= buildDocument());

  router.get("/openapi.json", (_req, res) => {
    res.json(getDocument());
  });
  let page: ReturnType<typeof swaggerUi.setup> | undefined;
  router.use("/docs", swaggerUi.serve);
  router.get("/docs", (req, res, next) => {
    page ??= swaggerUi.setup(getDocument(), { customSiteTitle: "zigznote API" });
    page(req, res, next);
  });
  router.all(["/openapi.json", "/docs", "/docs/{*asset}"], refuseOtherMethods(["GET"]));
  return router;
}
