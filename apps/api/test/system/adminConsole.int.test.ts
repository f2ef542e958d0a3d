import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import request from "supertest";
import { clerkFrontendApiHost, renderConsoleIndex } from "../../src/system/adminConsole";
import { createTestApp, type TestApp } from "../support/helpers";

const INDEX = `<!doctype html><html><head><script id="console-config" type="application/json">{}</script><script type="module" src="/admin/assets/app-abc.js"></script></head><body><div id="root"></div></body></html>`;

/** A console build as Vite lays it out: index.html and hashed files under assets/. */
function makeBuild(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "zigznote-admin-build-"));
  mkdirSync(path.join(dir, "assets"));
  writeFileSync(path.join(dir, "index.html"), INDEX);
  writeFileSync(path.join(dir, "assets", "app-abc.js"), "console.log('console');\n");
  return dir;
}

// Clerk's publishable key format: pk_test_ + base64("<frontend api host>$").
const PUBLISHABLE_KEY = `pk_test_${Buffer.from("sweet-fox-12.clerk.accounts.dev$").toString("base64")}`;

describe("GET /admin (the admin console)", () => {
  const dirs: string[] = [];
  let apps: TestApp[] = [];
  const appWith = (env: Record<string, string>) => {
    const testApp = createTestApp({ env });
    apps.push(testApp);
    return testApp.app;
  };
  afterEach(async () => {
    await Promise.all(apps.map((testApp) => testApp.close()));
    apps = [];
  });
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("answers 503 ADMIN_CONSOLE_NOT_BUILT without a build, and the API keeps working", async () => {
    const empty = mkdtempSync(path.join(tmpdir(), "zigznote-admin-none-"));
    dirs.push(empty);
    const app = appWith({ ADMIN_CONSOLE_DIR: empty });
    for (const page of ["/admin", "/admin/", "/admin/violations?type=meetings"]) {
      const res = await request(app).get(page).expect(503);
      expect(res.body.error.code).toBe("ADMIN_CONSOLE_NOT_BUILT");
      expect(res.body.requestId).toBe(res.headers["x-request-id"]);
    }
    await request(app).get("/health").expect(200);
  });

  it("serves index.html for the console's pages (deep links) with this deployment's settings", async () => {
    const dir = makeBuild();
    dirs.push(dir);
    const app = appWith({ ADMIN_CONSOLE_DIR: dir });
    for (const page of [
      "/admin",
      "/admin/",
      "/admin/organizations/3f1c",
      "/admin/violations?q=a",
    ]) {
      const res = await request(app).get(page).expect(200);
      expect(res.headers["content-type"]).toMatch(/^text\/html/);
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.text).toContain(
        '<script id="console-config" type="application/json">{"clerkPublishableKey":null,"isDevelopmentSignIn":false}</script>',
      );
    }
  });

  it("serves the hashed assets for good, and 404 (not the page) for a missing file", async () => {
    const dir = makeBuild();
    dirs.push(dir);
    const app = appWith({ ADMIN_CONSOLE_DIR: dir });
    const asset = await request(app).get("/admin/assets/app-abc.js").expect(200);
    expect(asset.headers["content-type"]).toMatch(/javascript/);
    expect(asset.headers["cache-control"]).toContain("immutable");
    const missing = await request(app).get("/admin/assets/app-old.js").expect(404);
    expect(missing.body.error.code).toBe("NOT_FOUND");
  });

  it("with CLERK_PUBLISHABLE_KEY: hands the key to the page and lets Clerk's script in", async () => {
    const dir = makeBuild();
    dirs.push(dir);
    const app = appWith({ ADMIN_CONSOLE_DIR: dir, CLERK_PUBLISHABLE_KEY: PUBLISHABLE_KEY });
    const res = await request(app).get("/admin/job-runs").expect(200);
    expect(res.text).toContain(`"clerkPublishableKey":"${PUBLISHABLE_KEY}"`);
    const csp = String(res.headers["content-security-policy"]);
    expect(csp).toContain("script-src 'self' https://sweet-fox-12.clerk.accounts.dev");
    expect(csp).toContain("connect-src 'self' https://sweet-fox-12.clerk.accounts.dev");
    // The API's own pages keep helmet's policy.
    const health = await request(app).get("/health").expect(200);
    expect(String(health.headers["content-security-policy"])).not.toContain("clerk");
  });
});

describe("renderConsoleIndex", () => {
  it("escapes `<` so a setting cannot close the script element", () => {
    const html = renderConsoleIndex(INDEX, {
      clerkPublishableKey: "</script><script>alert(1)</script>",
      isDevelopmentSignIn: true,
    });
    expect(html).not.toContain("</script><script>alert(1)");
    expect(html).toContain("\\u003c/script>");
  });
});

describe("clerkFrontendApiHost", () => {
  it("reads the Frontend API host from a publishable key, and refuses anything else", () => {
    expect(clerkFrontendApiHost(PUBLISHABLE_KEY)).toBe("sweet-fox-12.clerk.accounts.dev");
    expect(
      clerkFrontendApiHost(`pk_live_${Buffer.from("clerk.example.com$").toString("base64")}`),
    ).toBe("clerk.example.com");
    expect(clerkFrontendApiHost("sk_test_abc")).toBeNull();
    expect(
      clerkFrontendApiHost(`pk_test_${Buffer.from("evil.com; script-src *$").toString("base64")}`),
    ).toBeNull();
  });
});
