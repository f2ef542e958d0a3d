/**
 * The admin console (apps/admin, a Vite-built single-page app) served at `/admin`, on the API's
 * origin so the console's calls carry the `__session` cookie and pass the CSRF origin rule.
 * Files under `/admin/assets/` are content-hashed (cached for good); every other path without a
 * file extension is a page of the app and gets index.html (deep links), with the console's
 * settings written into it. Without a build (API unit tests, a checkout that never built the
 * console) the paths answer 503 `ADMIN_CONSOLE_NOT_BUILT` and the rest of the API is unaffected.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { NotFoundError, ServiceUnavailableError } from "@zigznote/shared";
import express, { Router, type Response } from "express";
import { refuseOtherMethods } from "../http/route";

/** What the page needs before its first API call (written into index.html). */
export interface AdminConsoleSettings {
  /** Clerk publishable key: the console signs in with Clerk's React SDK when set. */
  clerkPublishableKey: string | null;
  /** Whether this server accepts `pnpm dev:token` tokens (the sign-in form says so). */
  isDevelopmentSignIn: boolean;
}

export interface AdminConsoleOptions extends AdminConsoleSettings {
  /** The console's build folder (apps/admin/dist). */
  dir: string;
}

/** The build folder next to this package in the monorepo (apps/admin/dist). */
export const DEFAULT_ADMIN_CONSOLE_DIR = path.resolve(__dirname, "../../../admin/dist");

const CONFIG_PLACEHOLDER = /<script id="console-config" type="application\/json">[^<]*<\/script>/;

/** index.html with the settings in its JSON block (`<` escaped, so nothing closes the tag). */
export function renderConsoleIndex(html: string, settings: AdminConsoleSettings): string {
  const json = JSON.stringify(settings).replace(/</g, "\\u003c");
  return html.replace(
    CONFIG_PLACEHOLDER,
    `<script id="console-config" type="application/json">${json}</script>`,
  );
}

/**
 * Clerk's Frontend API host, read from the publishable key (`pk_test_` + base64 of
 * `<host>$`): the console loads Clerk's script from there and calls it.
 */
export function clerkFrontendApiHost(publishableKey: string): string | null {
  const encoded = /^pk_(?:test|live)_(.+)$/.exec(publishableKey)?.[1];
  if (!encoded) return null;
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const host = decoded.endsWith("$") ? decoded.slice(0, -1) : decoded;
  return /^[A-Za-z0-9.-]+$/.test(host) ? host : null;
}

/**
 * The page's Content-Security-Policy: the API's own (helmet's defaults) unless Clerk is on,
 * then widened by what Clerk's documentation lists for its script, API, avatars and bot check.
 */
function clerkContentSecurityPolicy(host: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' https://${host} https://challenges.cloudflare.com`,
    `connect-src 'self' https://${host}`,
    "img-src 'self' data: https://img.clerk.com",
    "style-src 'self' 'unsafe-inline'",
    "worker-src 'self' blob:",
    "frame-src 'self' https://challenges.cloudflare.com",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
    "object-src 'none'",
  ].join(";");
}

function notBuilt(dir: string): ServiceUnavailableError {
  return new ServiceUnavailableError(
    "The admin console is not built: run `pnpm --filter @zigznote/admin build` (or `pnpm start`)",
    { code: "ADMIN_CONSOLE_NOT_BUILT", details: { dir } },
  );
}

/** The `/admin` router. The build is looked for on each page load until it is found. */
export function createAdminConsoleRouter(options: AdminConsoleOptions): Router {
  const router = Router();
  const indexFile = path.join(options.dir, "index.html");
  let page: string | undefined;
  const readPage = (): string | undefined => {
    if (page !== undefined) return page;
    try {
      // Only the settings: nothing else of the options (the build's path) reaches the page.
      page = renderConsoleIndex(readFileSync(indexFile, "utf8"), {
        clerkPublishableKey: options.clerkPublishableKey,
        isDevelopmentSignIn: options.isDevelopmentSignIn,
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    return page;
  };
  const frontendApi = options.clerkPublishableKey
    ? clerkFrontendApiHost(options.clerkPublishableKey)
    : null;
  const sendPage = (res: Response, html: string) => {
    if (frontendApi)
      res.setHeader("Content-Security-Policy", clerkContentSecurityPolicy(frontendApi));
    // The page carries the settings of this deployment: never cached, the hashed assets are.
    res.setHeader("Cache-Control", "no-store");
    res.type("html").send(html);
  };

  router.use(
    "/admin/assets",
    express.static(path.join(options.dir, "assets"), {
      index: false,
      immutable: true,
      maxAge: "1y",
      fallthrough: true,
    }),
  );
  router.use(
    "/admin",
    express.static(options.dir, {
      index: false,
      redirect: false,
      maxAge: "1h",
      fallthrough: true,
    }),
  );
  router.get(["/admin", "/admin/{*page}"], (req, res, next) => {
    const html = readPage();
    if (html === undefined) {
      next(notBuilt(options.dir));
      return;
    }
    // A missing file (an old asset name) is a 404, not the app's page.
    if (path.extname(req.path) !== "") {
      next(new NotFoundError(`No console file at ${req.path}`));
      return;
    }
    sendPage(res, html);
  });
  router.all(["/admin", "/admin/{*page}"], refuseOtherMethods(["GET"]));
  return router;
}
