import { mkdirSync } from "node:fs";
import path from "node:path";
import {
  expect,
  request as playwrightRequest,
  test,
  type APIRequestContext,
  type BrowserContext,
  type Page,
} from "@playwright/test";
import { readState, SCREENSHOT_DIR, signSessionToken } from "./env";

const state = readState();
const DAY_MS = 86_400_000;

test.use({ baseURL: state.baseUrl });
test.describe.configure({ mode: "serial" });

/** A full-page screenshot kept as a test artifact (test-results/screenshots/<name>.png). */
async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await test.info().attach(name, { path: file, contentType: "image/png" });
}

async function useSession(context: BrowserContext, token: string): Promise<void> {
  await context.addCookies([{ name: "__session", value: token, url: state.baseUrl }]);
}

const platformAdminToken = () => signSessionToken(state, state.platformAdmin);

/** The API called directly (Authorization header), as a second witness of what the page shows. */
async function apiAs(token: string | null): Promise<APIRequestContext> {
  return playwrightRequest.newContext({
    baseURL: state.baseUrl,
    extraHTTPHeaders: token ? { Authorization: `Bearer ${token}` } : {},
  });
}

/** `datetime-local` value (UTC wall time, as the console reads it) and the console's display. */
function dateInput(date: Date): string {
  return date.toISOString().slice(0, 16);
}
function shown(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}
/** A time as the console shows it: to the second, in UTC. */
const SHOWN_TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/;

interface DetailViolation {
  id: string;
  type: string;
  status: string;
  graceEndsAt: string | null;
  waivedUntil: string | null;
  version: number;
}

async function readDetail(api: APIRequestContext, organizationId: string) {
  const res = await api.get(`/api/v1/admin/organizations/${organizationId}`);
  expect(res.status()).toBe(200);
  return (await res.json()) as {
    violations: DetailViolation[];
    subscription: { id: string; status: string; compUntil: string | null; version: number } | null;
  };
}

test("a signed-out visitor gets the sign-in form, and the API refuses the call", async ({
  page,
}) => {
  await page.goto("/admin/violations");
  await expect(page.getByRole("heading", { name: "Sign in to zigznote admin" })).toBeVisible();
  await expect(page.getByText("pnpm -s dev:token --platform-admin")).toHaveCount(0);
  await shot(page, "sign-in");
  const api = await apiAs(null);
  const res = await api.get("/api/v1/admin/overview");
  expect(res.status()).toBe(401);
  await api.dispose();
});

test("an organization's admin is refused (the page says so, the API answers 403)", async ({
  page,
  context,
}) => {
  const token = signSessionToken(state, state.orgAdmin, "admin");
  await useSession(context, token);
  await page.goto("/admin");
  await expect(page.getByRole("heading", { name: "Not allowed" })).toBeVisible();
  await expect(page.getByRole("alert")).toContainText("PLATFORM_ADMIN_REQUIRED");
  await shot(page, "refused-org-admin");
  const api = await apiAs(token);
  const res = await api.get("/api/v1/admin/violations");
  expect(res.status()).toBe(403);
  expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
    "PLATFORM_ADMIN_REQUIRED",
  );
  await api.dispose();
  // Signing out clears the cookie and brings the sign-in form back.
  await page.getByRole("button", { name: /Sign out/ }).click();
  await expect(page.getByRole("heading", { name: "Sign in to zigznote admin" })).toBeVisible();
});

test("a platform admin signs in with a session token and sees the overview", async ({
  page,
  context,
}) => {
  await page.goto("/admin");
  await page.getByLabel("Session token").fill(platformAdminToken());
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Overview", level: 1 })).toBeVisible();
  const cookies = await context.cookies(state.baseUrl);
  expect(cookies.find((cookie) => cookie.name === "__session")).toBeDefined();
  await expect(page.getByRole("link", { name: "open violations" })).toBeVisible();
  await expect(page.getByRole("img", { name: /Violations detected per day/ })).toBeVisible();
  await expect(page.getByRole("img", { name: "Job success rates" })).toBeVisible();
  await expect(page.getByRole("cell", { name: "cleanupOrphanedStorage" })).toBeVisible();
  // Who is signed in, as Clerk's user.created named them; /me says they are a platform admin.
  await expect(page.getByTestId("signed-in-as")).toHaveText(
    `${state.platformAdmin.email} · platform admin`,
  );
  // Organizations by plan: one row per plan, a column per status, totals; no status in the
  // plan column.
  const plans = page.getByTestId("plans");
  await expect(plans.getByRole("columnheader")).toHaveText(["Plan", "Active", "Deleted", "All"]);
  await expect(plans.getByRole("row", { name: /^free / })).toHaveText(/free\s*\d+\s*0\s*\d+/);
  await expect(plans.getByRole("row", { name: /^All plans / })).toBeVisible();
  await expect(plans).not.toContainText("status:");
  // Every job the API schedules says when it runs next, to the second, and how far off that is.
  const api = await apiAs(platformAdminToken());
  const jobs = ((await (await api.get("/api/v1/admin/jobs")).json()) as { data: unknown[] }).data;
  await api.dispose();
  expect(jobs.length).toBeGreaterThanOrEqual(8);
  const nextRuns = page.getByTestId("next-run");
  await expect(nextRuns).toHaveCount(jobs.length);
  for (const text of await nextRuns.allTextContents()) {
    // "now" when the page drew it within half a second of the run (CI once met 11:00:00).
    expect(text).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC \((in .+|now)\)$/);
  }
  // Each job's name ends before its bars begin (the longest name once ran into its bar).
  const chart = page.getByRole("img", { name: "Job success rates" });
  const labels = chart.getByTestId("job-rate-label");
  const tracks = chart.getByTestId("job-rate-track");
  expect(await labels.count()).toBeGreaterThanOrEqual(8);
  await expect(labels).toHaveCount(await tracks.count());
  for (let row = 0; row < (await labels.count()); row += 1) {
    const label = await labels.nth(row).boundingBox();
    const track = await tracks.nth(row).boundingBox();
    expect(label && track, `row ${row} of the job chart is drawn`).toBeTruthy();
    expect(label!.x + label!.width, `${await labels.nth(row).textContent()}`).toBeLessThan(
      track!.x,
    );
  }
  await shot(page, "overview");
});

test("the overview says there were no violations instead of drawing an empty chart", async ({
  page,
  context,
}) => {
  await useSession(context, platformAdminToken());
  // The API's real answer, with the 30 days emptied (the seeded organizations have violations).
  await page.route("**/api/v1/admin/overview", async (route) => {
    const response = await route.fetch();
    const body = (await response.json()) as {
      violations: { overTime: { day: string; detected: number; resolved: number }[] };
    };
    body.violations.overTime = body.violations.overTime.map((day) => ({
      ...day,
      detected: 0,
      resolved: 0,
    }));
    await route.fulfill({ response, json: body });
  });
  await page.goto("/admin");
  const section = page.getByRole("region", { name: "Violations over time" });
  await expect(section).toContainText("No violation was detected or resolved in the last 30 days.");
  await expect(section.getByRole("img")).toHaveCount(0);
  await shot(page, "overview-no-violations");
});

test("GET /api/v1/me says who is a platform admin", async () => {
  const asAdmin = await apiAs(platformAdminToken());
  const me = (await (await asAdmin.get("/api/v1/me")).json()) as {
    isPlatformAdmin: boolean;
    user: { email: string };
  };
  expect(me).toMatchObject({ isPlatformAdmin: true, user: { email: state.platformAdmin.email } });
  await asAdmin.dispose();
  const asCustomer = await apiAs(signSessionToken(state, state.orgAdmin, "admin"));
  expect(
    ((await (await asCustomer.get("/api/v1/me")).json()) as { isPlatformAdmin: boolean })
      .isPlatformAdmin,
  ).toBe(false);
  await asCustomer.dispose();
});

test.describe("as a platform admin", () => {
  test.beforeEach(async ({ context }) => {
    await useSession(context, platformAdminToken());
  });

  test("shows an organization's card on file, a payment waiting for confirmation and a dispute, and the dispute on the overview", async ({
    page,
  }) => {
    const disputed = state.disputed;
    if (!disputed) throw new Error("global setup did not seed the disputed organization");
    await page.goto(`/admin/organizations/${disputed.id}`);
    await expect(page.getByRole("heading", { name: disputed.name, level: 1 })).toBeVisible();
    await expect(page.getByTestId("card-on-file")).toHaveText("Visa •••• 4242 · expires 08/2030");
    await expect(page.getByTestId("billing-address")).toHaveText(
      "Friedrichstraße 68, 10117 Berlin, DE",
    );
    await expect(page.getByTestId("tax-ids")).toContainText("EU VAT DE123456789");
    const pending = page.getByTestId("pending-confirmations");
    await expect(pending).toContainText("confirmation needed");
    await expect(pending).toContainText("$49.00");
    await expect(pending.getByRole("link", { name: "invoice page" })).toHaveAttribute(
      "href",
      /^https:\/\/invoice\.stripe\.test\/i\/acct_test\/in_/,
    );
    const dispute = page.getByTestId("disputes").getByRole("listitem");
    await expect(dispute).toHaveCount(1);
    await expect(dispute).toContainText("$19.00 · fraudulent");
    await expect(dispute).toContainText("needs response");
    await expect(dispute.getByTestId("evidence-due")).toHaveText(SHOWN_TIME);
    await expect(page.getByText(/waits for the customer's authentication/)).toBeVisible();
    // The API says the same as the page.
    const api = await apiAs(platformAdminToken());
    const detail = await api.get(`/api/v1/admin/organizations/${disputed.id}`);
    const body = (await detail.json()) as {
      billing: { paymentMethod: { last4: string }; pendingConfirmations: unknown[] };
      disputes: { status: string; reason: string }[];
    };
    expect(body.billing.paymentMethod.last4).toBe("4242");
    expect(body.billing.pendingConfirmations).toHaveLength(1);
    expect(body.disputes).toMatchObject([{ status: "needs_response", reason: "fraudulent" }]);
    await api.dispose();
    await page.getByRole("heading", { name: "Payment details" }).scrollIntoViewIfNeeded();
    await shot(page, "organization-billing");

    await page.goto("/admin");
    const open = page
      .getByTestId("open-disputes")
      .getByRole("row", { name: new RegExp(disputed.name) });
    await expect(open).toContainText("$19.00");
    await expect(open).toContainText("fraudulent");
    await open.getByRole("link", { name: disputed.name }).click();
    await expect(page).toHaveURL(new RegExp(`/admin/organizations/${disputed.id}$`));
    await page.goto("/admin");
    await shot(page, "overview-disputes");
  });

  test("finds the organization over its meeting limit through the filters (kept in the URL)", async ({
    page,
  }) => {
    await page.goto("/admin/violations");
    await expect(page.getByRole("heading", { name: "Violations" })).toBeVisible();
    await page.getByLabel("Type").selectOption("meetings");
    await page.getByLabel("Organization name or id").fill(state.overLimit.name);
    await page.getByRole("button", { name: "Search" }).click();
    await expect(page).toHaveURL(/type=meetings/);
    await expect(page).toHaveURL(
      new RegExp(`q=${encodeURIComponent(state.overLimit.name).replace(/%20/g, "(\\+|%20)")}`),
    );
    const row = page.getByRole("row", { name: new RegExp(state.overLimit.name) });
    await expect(row).toHaveCount(1);
    await expect(row).toContainText("13 / 10");
    // The URL is the view: opening it again shows the same filters and rows.
    await page.reload();
    await expect(page.getByLabel("Type")).toHaveValue("meetings");
    await expect(page.getByRole("row", { name: new RegExp(state.overLimit.name) })).toHaveCount(1);
    await shot(page, "violations-filtered");
    await row.getByRole("link", { name: state.overLimit.name }).click();
    await expect(page.getByRole("heading", { name: state.overLimit.name, level: 1 })).toBeVisible();
    await expect(page).toHaveURL(new RegExp(`/admin/organizations/${state.overLimit.id}$`));
    await expect(page.getByText("Standup", { exact: false })).toHaveCount(0);
    // Members by name and e-mail as Clerk gave them; a username when that is all there is.
    const members = page.getByTestId("members");
    await expect(members.getByRole("row")).toHaveText([
      "NameE-mailRole",
      `Ada Lovelaceada-${state.suffix}@example.testadmin`,
      `—ben-${state.suffix}@example.testmember`,
      `@cy.ops.${state.suffix}—member`,
    ]);
    await shot(page, "organization");
  });

  test("extends a grace period: shown on the page, in the API and in the audit log", async ({
    page,
  }) => {
    await page.goto(`/admin/organizations/${state.overLimit.id}`);
    const card = page.getByTestId("violation-storage");
    await expect(card).toBeVisible();
    const target = new Date(Math.ceil((Date.now() + 20 * DAY_MS) / 60_000) * 60_000);
    await card.getByRole("button", { name: "Extend grace…" }).click();
    const dialog = page.getByRole("dialog", { name: "Extend the grace period" });
    await expect(dialog).toBeVisible();
    // The reason is required: no confirm without one.
    await expect(dialog.getByRole("button", { name: "Extend grace" })).toBeDisabled();
    await dialog.getByLabel("New grace end (UTC)").fill(dateInput(target));
    await dialog.getByLabel(/Reason/).fill("Customer is moving recordings out; agreed on a call");
    await shot(page, "dialog-extend-grace");
    await dialog.getByRole("button", { name: "Extend grace" }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByRole("status").filter({ hasText: "Grace extended to" })).toContainText(
      shown(target),
    );
    await expect(card.getByTestId("grace-ends")).toHaveText(shown(target));

    const api = await apiAs(platformAdminToken());
    const storage = (await readDetail(api, state.overLimit.id)).violations.find(
      (violation) => violation.type === "storage",
    );
    expect(storage?.graceEndsAt && new Date(storage.graceEndsAt).toISOString()).toBe(
      target.toISOString(),
    );
    const audit = await api.get(
      `/api/v1/admin/audit-log?targetType=violation&targetId=${storage?.id}`,
    );
    const entries = ((await audit.json()) as { data: { action: string; reason: string }[] }).data;
    expect(entries.filter((entry) => entry.action === "violation.extend_grace")).toHaveLength(1);
    await api.dispose();

    await page.getByRole("link", { name: "See it in the audit log" }).click();
    await expect(page.getByRole("heading", { name: "Audit log" })).toBeVisible();
    const entry = page.getByTestId("audit-entry").filter({ hasText: "agreed on a call" });
    await expect(entry).toHaveCount(1);
    await expect(entry).toContainText("violation extend grace");
    // Who: the operator's e-mail, their name under it; what: the organization's violation.
    await expect(entry.getByTestId("audit-who")).toHaveText(
      `${state.platformAdmin.email}Olive Operator`,
    );
    await expect(entry.getByTestId("audit-target")).toContainText(
      `violation of ${state.overLimit.name}`,
    );
    await expect(entry.getByRole("cell").first()).toHaveText(SHOWN_TIME);
    await shot(page, "audit-log");
  });

  test("waives a violation: the page, the API and the audit log show it", async ({ page }) => {
    await page.goto(`/admin/organizations/${state.overLimit.id}`);
    const card = page.getByTestId("violation-meetings");
    const until = new Date(Math.ceil((Date.now() + 30 * DAY_MS) / 60_000) * 60_000);
    await card.getByRole("button", { name: "Waive…" }).click();
    const dialog = page.getByRole("dialog", { name: "Waive the violation" });
    await dialog.getByLabel("Waived until (UTC)").fill(dateInput(until));
    await dialog.getByLabel(/Reason/).fill("Sales promised an upgrade next week");
    await dialog.getByRole("button", { name: "Waive" }).click();
    await expect(dialog).toBeHidden();
    await expect(card.getByTestId("waived-until")).toHaveText(shown(until));
    await expect(card.locator(".badge")).toHaveText("waived");

    const api = await apiAs(platformAdminToken());
    const res = await api.get(
      `/api/v1/admin/violations?q=${state.overLimit.id}&type=meetings&status=waived`,
    );
    const waived = ((await res.json()) as { data: DetailViolation[] }).data;
    expect(waived).toHaveLength(1);
    expect(new Date(waived[0]!.waivedUntil!).toISOString()).toBe(until.toISOString());
    await api.dispose();

    await page.goto(`/admin/audit-log?targetType=violation&targetId=${waived[0]!.id}`);
    await expect(
      page.getByTestId("audit-entry").filter({ hasText: "Sales promised an upgrade" }),
    ).toContainText("violation waive");
  });

  test("a concurrent edit: the later confirm shows the 409 clearly and the page reloads", async ({
    page,
  }) => {
    await page.goto(`/admin/organizations/${state.overLimit.id}`);
    const card = page.getByTestId("violation-storage");
    await card.getByRole("button", { name: "Extend grace…" }).click();
    const dialog = page.getByRole("dialog", { name: "Extend the grace period" });
    await expect(dialog).toBeVisible();

    // Another operator extends the same grace period first.
    const api = await apiAs(platformAdminToken());
    const storage = (await readDetail(api, state.overLimit.id)).violations.find(
      (violation) => violation.type === "storage",
    )!;
    const theirs = new Date(Math.ceil((Date.now() + 40 * DAY_MS) / 60_000) * 60_000);
    const res = await api.post(`/api/v1/admin/violations/${storage.id}/extend-grace`, {
      data: {
        reason: "the other operator",
        expectedVersion: storage.version,
        graceEndsAt: theirs.toISOString(),
      },
    });
    expect(res.status()).toBe(200);
    await api.dispose();

    await dialog.getByLabel(/Reason/).fill("my stale edit");
    await dialog.getByRole("button", { name: "Extend grace" }).click();
    await expect(dialog.getByRole("alert")).toContainText("Conflict");
    await expect(dialog.getByRole("alert")).toContainText("409");
    await shot(page, "dialog-conflict");
    // The page behind has reloaded: it shows the other operator's date.
    await expect(card.getByTestId("grace-ends")).toHaveText(shown(theirs));
    // Confirming again, later than their date, sends the version just read: accepted.
    await dialog
      .getByLabel("New grace end (UTC)")
      .fill(dateInput(new Date(theirs.getTime() + DAY_MS)));
    await dialog.getByRole("button", { name: "Extend grace" }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByRole("status").filter({ hasText: "Grace extended to" })).toBeVisible();
  });

  test("dialogs are keyboard-usable: focus stays inside, Escape closes and returns focus", async ({
    page,
  }) => {
    await page.goto(`/admin/organizations/${state.overLimit.id}`);
    const opener = page.getByTestId("violation-storage").getByRole("button", { name: "Waive…" });
    await opener.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Waive the violation" });
    await expect(dialog).toBeVisible();
    await expect(dialog.getByLabel("Waived until (UTC)")).toBeFocused();
    for (let i = 0; i < 8; i += 1) {
      await page.keyboard.press("Tab");
      expect(await page.evaluate(() => Boolean(document.activeElement?.closest("dialog")))).toBe(
        true,
      );
    }
    await page.keyboard.press("Escape");
    await expect(dialog).toBeHidden();
    await expect(opener).toBeFocused();
  });

  test("lifts a suspension for N days: the page, the API and the audit log show it", async ({
    page,
  }) => {
    await page.goto("/admin/organizations");
    await page.getByLabel("Organization name or id").fill(state.suspended.name);
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: state.suspended.name }).click();
    await expect(page.getByRole("heading", { name: state.suspended.name, level: 1 })).toBeVisible();
    await expect(page.getByTestId("subscription-status")).toHaveText("suspended");
    await expect(page.getByTestId("comp-until")).toHaveText("—");
    const before = Date.now();
    await page.getByRole("button", { name: "Lift suspension…" }).click();
    const dialog = page.getByRole("dialog", { name: "Lift the suspension" });
    await dialog.getByLabel("Days (1–90)").fill("14");
    await dialog.getByLabel(/Reason/).fill("Card replaced, bank transfer on its way");
    await dialog.getByRole("button", { name: "Lift suspension" }).click();
    await expect(dialog).toBeHidden();
    await expect(
      page.getByRole("status").filter({ hasText: "Suspension lifted until" }),
    ).toBeVisible();
    await expect(page.getByTestId("comp-until")).not.toHaveText("—");

    const api = await apiAs(platformAdminToken());
    const { subscription } = await readDetail(api, state.suspended.id);
    const compUntil = Date.parse(subscription!.compUntil!);
    expect(compUntil).toBeGreaterThanOrEqual(before + 14 * DAY_MS - 60_000);
    expect(compUntil).toBeLessThanOrEqual(Date.now() + 14 * DAY_MS + 60_000);
    await expect(page.getByTestId("comp-until")).toHaveText(shown(new Date(compUntil)));
    await api.dispose();
    await shot(page, "organization-suspension-lifted");

    await page.getByRole("link", { name: "See it in the audit log" }).click();
    await expect(
      page.getByTestId("audit-entry").filter({ hasText: "bank transfer on its way" }),
    ).toContainText("subscription lift suspension");
  });

  test("job runs: filtered by outcome in the URL", async ({ page }) => {
    await page.goto("/admin/job-runs");
    await expect(page.getByRole("heading", { name: "Job runs" })).toBeVisible();
    await page.getByLabel("Outcome").selectOption("failed");
    await expect(page).toHaveURL(/outcome=failed/);
    const failed = page.getByRole("row", { name: /storage provider answered 503/ });
    await expect(failed).toHaveCount(1);
    // Started and finished to the second (1.5 s apart), and the duration said.
    const cells = failed.getByRole("cell");
    await expect(cells.nth(2)).toHaveText(SHOWN_TIME);
    await expect(cells.nth(3)).toHaveText(SHOWN_TIME);
    await expect(cells.nth(3)).not.toHaveText((await cells.nth(2).textContent()) ?? "");
    await expect(failed.getByTestId("duration")).toHaveText("1.5 s");
    // Each job card: its schedule (with the zone) and when it runs next.
    const card = page
      .getByRole("listitem")
      .filter({ has: page.getByRole("heading", { name: "cleanupOrphanedBots" }) });
    await expect(card).toContainText("*/5 * * * * (UTC)");
    await expect(card.getByTestId("next-run")).toHaveText(
      /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC \((in (\d+(\.\d)? s|\d+ min( \d+ s)?)|now)\)$/,
    );
    await shot(page, "job-runs");
  });

  test("an API error shows its code and request id", async ({ page }) => {
    await page.goto("/admin/organizations/00000000-0000-4000-8000-000000000000");
    const alert = page.getByRole("alert");
    await expect(alert).toContainText("404");
    await expect(alert.getByTestId("request-id")).toHaveText(/\S{8,}/);
    await shot(page, "error-state");
  });

  test("runs a job now: the outcome shows, and so does the audit entry", async ({ page }) => {
    await page.goto("/admin/job-runs?jobName=recheckPlanViolations");
    const job = page
      .getByRole("listitem")
      .filter({ has: page.getByRole("heading", { name: "recheckPlanViolations" }) });
    await job.getByRole("button", { name: "Run now…" }).click();
    const dialog = page.getByRole("dialog", { name: "Run recheckPlanViolations now" });
    await dialog.getByLabel(/Reason/).fill("Verify violations after the price change");
    await dialog.getByRole("button", { name: "Run now", exact: true }).click();
    await expect(dialog).toBeHidden();
    await expect(page.getByRole("status").filter({ hasText: "recheckPlanViolations:" })).toHaveText(
      "recheckPlanViolations: succeeded",
    );
    // The run just made, with its duration, at the top of the list.
    const latest = page.getByRole("row").nth(1);
    await expect(latest).toContainText("recheckPlanViolations");
    await expect(latest.getByTestId("duration")).toHaveText(/^\d+ ms$|^\d+(\.\d)? s$/);
    await shot(page, "job-runs-after-run");
    await page.goto("/admin/audit-log?targetType=job");
    // Two entries: who asked, written before the job started, and the outcome above it.
    const entries = page.getByTestId("audit-entry").filter({ hasText: "after the price change" });
    await expect(entries).toHaveCount(2);
    await expect(entries.nth(0)).toContainText("job run");
    await expect(entries.nth(0)).not.toContainText("job run requested");
    await expect(entries.nth(1)).toContainText("job run requested");
    for (const entry of [entries.nth(0), entries.nth(1)]) {
      // The job's whole name, and who ran it.
      await expect(entry.getByTestId("audit-target")).toHaveText("job recheckPlanViolations");
      await expect(entry.getByTestId("audit-who")).toContainText(state.platformAdmin.email);
    }
    await shot(page, "audit-log-jobs");
  });

  test("every page fits a phone's width (390 px)", async ({ page }) => {
    await page.setViewportSize({ width: 390, height: 844 });
    const pages: [string, string][] = [
      ["overview", "/admin"],
      ["violations", "/admin/violations"],
      ["organization", `/admin/organizations/${state.overLimit.id}`],
      ["organization-billing", `/admin/organizations/${state.disputed?.id ?? ""}`],
      ["job-runs", "/admin/job-runs"],
      ["audit-log", "/admin/audit-log"],
    ];
    for (const [name, url] of pages) {
      await page.goto(url);
      await expect(page.getByRole("heading", { level: 1 })).toBeVisible();
      await expect(page.getByRole("status")).toHaveCount(0);
      // Wide tables scroll inside their own box; the page itself never scrolls sideways.
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow, `${name} is wider than the phone`).toBeLessThanOrEqual(0);
      await shot(page, `phone-${name}`);
    }
  });
});
