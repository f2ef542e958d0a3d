import { defineConfig } from "@playwright/test";

/**
 * End-to-end tests of the console in a real browser: Debian's Chromium (no browser download:
 * PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1, `.ci/run` installs the `chromium` package), against the real
 * API (apps/api/dist with this package's build) on its own PostgreSQL database (e2e/globalSetup.ts).
 */
export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results/artifacts",
  globalSetup: "./e2e/globalSetup.ts",
  // One API server and one database: the tests act on shared rows, in order.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    viewport: { width: 1280, height: 900 },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
});
