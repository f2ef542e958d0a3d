import { mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { expect, request as playwrightRequest, test, type Page } from "@playwright/test";
import { readState, SCREENSHOT_DIR, signSessionToken } from "./env";

/**
 * What another site can do to a signed-in operator: post to the admin API with the console's
 * `__session` cookie (CSRF), or frame the console (clickjacking); and whether the console runs
 * under its own Content-Security-Policy without a violation. The attacker's pages are served
 * from `localhost`, another site than the API's `127.0.0.1`.
 */
const state = readState();

test.use({ baseURL: state.baseUrl });
test.describe.configure({ mode: "serial" });

let attacker: Server;
let attackerUrl = "";
let attackerPage = "";

test.beforeAll(async () => {
  attacker = createServer((_req, res) => {
    res.setHeader("Content-Type", "text/html; charset=utf-8");
    res.end(attackerPage);
  });
  await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", resolve));
  const address = attacker.address();
  attackerUrl = `http://localhost:${typeof address === "object" && address ? address.port : 0}/`;
});
test.afterAll(async () => {
  await new Promise((resolve) => attacker.close(resolve));
});

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/** Signs in through the console's form, as an operator does (the console sets the cookie). */
async function signIn(page: Page): Promise<void> {
  await page.goto("/admin");
  await page.getByLabel("Session token").fill(signSessionToken(state, state.platformAdmin));
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Overview", level: 1 })).toBeVisible();
}

async function auditReasons(targetId: string): Promise<string[]> {
  const api = await playwrightRequest.newContext({
    baseURL: state.baseUrl,
    extraHTTPHeaders: {
      Authorization: `Bearer ${signSessionToken(state, state.platformAdmin)}`,
    },
  });
  try {
    const res = await api.get(`/api/v1/admin/audit-log?targetId=${targetId}&limit=200`);
    expect(res.status()).toBe(200);
    const body = (await res.json()) as { data: { reason: string }[] };
    return body.data.map((entry) => entry.reason);
  } finally {
    await api.dispose();
  }
}

test("another site's form post and fetch with the operator's cookie do not act", async ({
  page,
}) => {
  await signIn(page);
  const target = `${state.baseUrl}/api/v1/admin/organizations/${state.overLimit.id}/recheck-violations`;
  // A form can send a JSON-looking text/plain body; fetch without CORS can send any simple one.
  attackerPage = `<!doctype html><html><body>
    <form id="f" method="POST" action="${target}" enctype="text/plain">
      <input type="hidden" name='{"reason":"csrf-form","x":"' value='"}'>
    </form>
    <script>
      fetch(${JSON.stringify(target)}, {
        method: "POST", mode: "no-cors", credentials: "include",
        headers: { "Content-Type": "text/plain" }, body: '{"reason":"csrf-fetch"}',
      }).finally(() => document.getElementById("f").submit());
    </script></body></html>`;
  const posted = page.waitForResponse((res) => res.url() === target);
  await page.goto(attackerUrl);
  expect((await posted).status()).toBeGreaterThanOrEqual(400);
  await shot(page, "csrf-form-post");
  const reasons = await auditReasons(state.overLimit.id);
  expect(reasons).not.toContain("csrf-form");
  expect(reasons).not.toContain("csrf-fetch");
});

test("another site cannot frame the console", async ({ page }) => {
  await signIn(page);
  attackerPage = `<!doctype html><html><body><h1>Win a prize</h1>
    <iframe name="console" src="${state.baseUrl}/admin/" width="800" height="600"></iframe>
    </body></html>`;
  await page.goto(attackerUrl);
  await page.waitForLoadState("load");
  const framed = page.frame({ name: "console" });
  expect(framed).not.toBeNull();
  // The browser refuses to render it (frame-ancestors / X-Frame-Options): no console inside.
  await expect(framed!.getByRole("heading", { name: "Overview" })).toHaveCount(0);
  await expect(framed!.locator("#root")).toHaveCount(0);
  await shot(page, "framed-console-refused");
});

test("the console's pages run under its Content-Security-Policy without a violation", async ({
  page,
}) => {
  const violations: string[] = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (event) => {
      console.error(
        `Content Security Policy violation: ${event.violatedDirective} ${event.blockedURI}`,
      );
    });
  });
  const first = await page.goto("/admin");
  expect(first?.headers()["content-security-policy"]).toMatch(/script-src 'self'(;|$)/);
  await page.getByLabel("Session token").fill(signSessionToken(state, state.platformAdmin));
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Overview", level: 1 })).toBeVisible();
  for (const [link, heading] of [
    ["Violations", "Violations"],
    ["Organizations", "Organizations"],
    ["Job runs", "Job runs"],
    ["Audit log", "Audit log"],
  ] as const) {
    await page.getByRole("navigation").getByRole("link", { name: link }).click();
    await expect(page.getByRole("heading", { name: heading, level: 1 })).toBeVisible();
  }
  await page.goto(`/admin/organizations/${state.overLimit.id}`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText(state.overLimit.name);
  expect(violations).toEqual([]);
});
