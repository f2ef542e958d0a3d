/**
 * Before the browser tests: a fresh PostgreSQL database of their own (TEST_DATABASE_URL's name +
 * `_e2e`), migrated and seeded with organizations in the states the tests act on; a key pair the
 * tests sign session tokens with; and the real API server (apps/api/dist/server.js, serving this
 * package's build at /admin) on a free port, trusting that key (CLERK_JWT_KEY) and listing the
 * platform admin in PLATFORM_ADMIN_USER_IDS. Stripe is the API's own Stripe-speaking test server
 * (apps/api/test/fakes): one organization's card, a payment waiting for confirmation and a
 * dispute reach the API as signed webhooks, as in production. Returns the teardown that stops
 * the servers.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Webhook } from "svix";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import {
  createMeeting,
  createMembership,
  createStorageObject,
  createSubscription,
  createUser,
  prepareTestDatabase,
} from "@zigznote/database/testing";
import type * as StripeFake from "../../api/test/support/fakes/stripeServer";
import type { FakeStripeServer } from "../../api/test/support/fakes/stripeServer";
import { PACKAGE_DIR, RESULTS_DIR, STATE_FILE, signSessionToken, type E2eState } from "./env";

const DAY_MS = 86_400_000;
const API_DIR = path.resolve(PACKAGE_DIR, "../api");

function e2eDatabaseUrl(): string {
  const base = new URL(
    process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_test",
  );
  base.pathname = `${base.pathname.replace(/^\//, "")}_e2e`;
  return base.toString();
}

/** Drops the e2e database (a previous run's rows) and makes it again, migrated, with the plans. */
async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unexpected e2e database name ${name}`);
  const maintenance = new URL(url);
  maintenance.pathname = "/postgres";
  const admin = createPrismaClient(maintenance.toString(), { maxConnections: 1 });
  try {
    await admin.$executeRawUnsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.$disconnect();
  }
  await prepareTestDatabase(url);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(baseUrl: string, server: ChildProcess, logFile: string) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) {
      throw new Error(`the API server exited (${server.exitCode}); see ${logFile}`);
    }
    try {
      const res = await fetch(`${baseUrl}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the API server did not answer /health within 60 s; see ${logFile}`);
}

/** Organizations in the states the console's tests look for (names unique to this run). */
async function seed(db: PrismaClient, suffix: string) {
  const now = Date.now();
  // Users as Clerk's webhooks leave them: most with an e-mail and a name.
  const member = async (
    organizationId: string,
    role: "admin" | "member",
    label: string,
    person: { firstName?: string; lastName?: string; username?: string; hasEmail?: boolean } = {},
  ) => {
    const user = await createUser(db, {
      email: person.hasEmail === false ? null : `${label}-${suffix}@example.test`,
      firstName: person.firstName ?? null,
      lastName: person.lastName ?? null,
      username: person.username ?? null,
    });
    await createMembership(db, { organizationId, userId: user.id, role });
  };

  // Free plan (10 meetings a month, 1 GiB): 13 meetings this month and 2 GiB stored.
  const overLimit = await db.organization.create({
    data: { name: `Overlimit Meetings ${suffix}`, clerkId: `org_over_${suffix}`, planSlug: "free" },
  });
  await member(overLimit.id, "admin", "ada", { firstName: "Ada", lastName: "Lovelace" });
  // Clerk gave no name for Ben, and only a username for Cy (a username sign-in, no e-mail).
  await member(overLimit.id, "member", "ben");
  await member(overLimit.id, "member", "cy", { username: `cy.ops.${suffix}`, hasEmail: false });
  for (let i = 0; i < 13; i += 1) {
    const meeting = await createMeeting(db, {
      organizationId: overLimit.id,
      title: `Standup ${i + 1}`,
    });
    if (i === 0) await createStorageObject(db, meeting, { sizeBytes: 2n * 1024n ** 3n });
  }

  // A paid organization whose payment failed 10 days ago: grace ended, suspended.
  const suspended = await db.organization.create({
    data: {
      name: `Suspended Payments ${suffix}`,
      clerkId: `org_susp_${suffix}`,
      planSlug: "pro",
      stripeCustomerId: `cus_susp_${suffix}`,
    },
  });
  await member(suspended.id, "admin", "cleo");
  await createSubscription(db, {
    organizationId: suspended.id,
    planSlug: "pro",
    stripeCustomerId: `cus_susp_${suffix}`,
    status: "suspended",
    currentPeriodStart: new Date(now - 20 * DAY_MS),
    currentPeriodEnd: new Date(now + 10 * DAY_MS),
    paymentFailedAt: new Date(now - 10 * DAY_MS),
    graceEndsAt: new Date(now - 3 * DAY_MS),
    paymentRetryCount: 4,
  });

  // Past due, grace ending tomorrow; and a free team over its 3 members.
  const pastDue = await db.organization.create({
    data: {
      name: `Late Payer ${suffix}`,
      clerkId: `org_late_${suffix}`,
      planSlug: "pro",
      stripeCustomerId: `cus_late_${suffix}`,
    },
  });
  await member(pastDue.id, "admin", "dan");
  await createSubscription(db, {
    organizationId: pastDue.id,
    planSlug: "pro",
    stripeCustomerId: `cus_late_${suffix}`,
    status: "past_due",
    paymentFailedAt: new Date(now - 6 * DAY_MS),
    graceEndsAt: new Date(now + DAY_MS),
    paymentRetryCount: 2,
  });
  const crowded = await db.organization.create({
    data: { name: `Crowded Team ${suffix}`, clerkId: `org_crowd_${suffix}`, planSlug: "free" },
  });
  for (const [index, name] of ["eve", "fay", "gus", "hal", "ivy"].entries()) {
    await member(crowded.id, index === 0 ? "admin" : "member", name);
  }

  // Job history for the overview's success rates and the job runs page.
  const runs: {
    jobName: string;
    hoursAgo: number;
    outcome: "succeeded" | "failed";
    error?: string;
  }[] = [];
  for (let hour = 1; hour <= 30; hour += 3) {
    runs.push({ jobName: "recheckPlanViolations", hoursAgo: hour, outcome: "succeeded" });
    runs.push({ jobName: "deliverNotifications", hoursAgo: hour + 1, outcome: "succeeded" });
  }
  runs.push({
    jobName: "cleanupOrphanedStorage",
    hoursAgo: 5,
    outcome: "failed",
    error: "storage provider answered 503",
  });
  runs.push({ jobName: "cleanupOrphanedStorage", hoursAgo: 29, outcome: "succeeded" });
  runs.push({ jobName: "checkExpiredGracePeriods", hoursAgo: 2, outcome: "succeeded" });
  for (const run of runs) {
    const startedAt = new Date(now - run.hoursAgo * 3_600_000);
    await db.jobRun.create({
      data: {
        jobName: run.jobName,
        scheduledFor: startedAt,
        startedAt,
        finishedAt: new Date(startedAt.getTime() + 1_500),
        outcome: run.outcome,
        rowsAffected: run.outcome === "succeeded" ? 3 : 0,
        error: run.error ?? null,
      },
    });
  }
  return {
    overLimit: { id: overLimit.id, name: overLimit.name },
    suspended: { id: suspended.id, name: suspended.name },
    recheck: [overLimit.id, crowded.id],
  };
}

/** Clerk's `user.created` for one user, signed as Svix signs it (the real `svix` library). */
async function deliverClerkUser(
  baseUrl: string,
  secret: string,
  user: { id: string; email: string; firstName: string; lastName: string },
): Promise<void> {
  const now = Date.now();
  const emailId = `idn_${user.id}`;
  const body = JSON.stringify({
    object: "event",
    type: "user.created",
    timestamp: now,
    instance_id: "ins_zigznote_e2e",
    data: {
      id: user.id,
      object: "user",
      username: null,
      first_name: user.firstName,
      last_name: user.lastName,
      image_url: `https://img.clerk.com/${user.id}`,
      primary_email_address_id: emailId,
      email_addresses: [{ id: emailId, object: "email_address", email_address: user.email }],
      created_at: now,
      updated_at: now,
    },
  });
  const msgId = `msg_${randomBytes(8).toString("hex")}`;
  const timestamp = new Date();
  const res = await fetch(`${baseUrl}/webhooks/clerk`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "svix-id": msgId,
      "svix-timestamp": String(Math.floor(timestamp.getTime() / 1000)),
      "svix-signature": new Webhook(secret).sign(msgId, timestamp, body),
    },
    body,
  });
  if (!res.ok) throw new Error(`/webhooks/clerk answered ${res.status}: ${await res.text()}`);
}

const E2E_PRICE_PRO = "price_e2e_pro";

type StripeFakeModule = typeof StripeFake;

/**
 * The API's Stripe-speaking test server. Its package (apps/api) is CommonJS, so it is required
 * (Playwright compiles it) rather than imported as an ES module.
 */
function loadStripeFake(): StripeFakeModule {
  return createRequire(import.meta.url)(
    "../../api/test/support/fakes/stripeServer.ts",
  ) as StripeFakeModule;
}

/**
 * An organization on the pro plan whose Stripe history arrives as signed webhooks: a Visa card
 * on file, its billing address and VAT number, a renewal paid and then disputed (fraudulent,
 * evidence due in 9 days), and the next renewal waiting for the customer's confirmation (3-D
 * Secure).
 */
async function seedStripeHistory(
  db: PrismaClient,
  fake: FakeStripeServer,
  input: { baseUrl: string; webhookSecret: string; suffix: string },
): Promise<{ id: string; name: string }> {
  const { signStripeEvent } = loadStripeFake();
  const organization = await db.organization.create({
    data: { name: `Disputed Payments ${input.suffix}`, clerkId: `org_disp_${input.suffix}` },
  });
  await createMembership(db, {
    organizationId: organization.id,
    userId: (await createUser(db, { email: `jo-${input.suffix}@example.test` })).id,
    role: "admin",
  });
  // Stripe's REST API as the SDK speaks it: form-encoded, the secret key as bearer.
  const stripePost = async (path: string, form: Record<string, string>) => {
    const res = await fetch(`http://127.0.0.1:${fake.port}${path}`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${fake.secretKey}`,
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams(form).toString(),
    });
    if (!res.ok) throw new Error(`Stripe ${path} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { id: string };
  };
  const customer = await stripePost("/v1/customers", {
    name: organization.name,
    email: `ap-${input.suffix}@example.test`,
    "metadata[organizationId]": organization.id,
  });
  await db.organization.update({
    where: { id: organization.id },
    data: { stripeCustomerId: customer.id },
  });
  const card = fake.attachCard(customer.id, {
    brand: "visa",
    last4: "4242",
    expMonth: 8,
    expYear: 2030,
  });
  const subscription = await stripePost("/v1/subscriptions", {
    customer: customer.id,
    "items[0][price]": E2E_PRICE_PRO,
    default_payment_method: card.paymentMethod.id as string,
    "metadata[organizationId]": organization.id,
    "metadata[planSlug]": "pro",
  });
  const address = fake.setCustomerAddress(customer.id, {
    line1: "Friedrichstraße 68",
    postal_code: "10117",
    city: "Berlin",
    country: "DE",
  });
  const vat = fake.addTaxId(customer.id, { type: "eu_vat", value: "DE123456789", country: "DE" });
  const paid = fake.invoiceEvent("invoice.paid", subscription.id, { amountDue: 1900 });
  const chargeId = fake.chargeOf((paid.data.object as unknown as { id: string }).id).id as string;
  const dispute = fake.disputeEvent("charge.dispute.created", chargeId, {
    reason: "fraudulent",
    evidenceDueBy: Math.floor(Date.now() / 1000) + 9 * 86_400,
  });
  const needsConfirmation = fake.invoiceEvent("invoice.payment_action_required", subscription.id, {
    amountDue: 4900,
  });
  const events = [
    ...fake.events.filter((event) => (event.data.object as { id?: string }).id === subscription.id),
    card.event,
    address,
    vat.event,
    paid,
    dispute,
    needsConfirmation,
  ];
  for (const event of events) {
    const { payload, header } = signStripeEvent(event, input.webhookSecret);
    const res = await fetch(`${input.baseUrl}/webhooks/stripe`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Stripe-Signature": header },
      body: payload,
    });
    if (!res.ok) throw new Error(`${event.type} answered ${res.status}: ${await res.text()}`);
  }
  return { id: organization.id, name: organization.name };
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const serverEntry = path.join(API_DIR, "dist/server.js");
  if (!existsSync(serverEntry) || !existsSync(path.join(PACKAGE_DIR, "dist/index.html"))) {
    throw new Error("Build first: `pnpm build` (the tests run the built API and console)");
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const databaseUrl = e2eDatabaseUrl();
  await recreateDatabase(databaseUrl);

  const suffix = randomBytes(3).toString("hex");
  const db = createPrismaClient(databaseUrl, { maxConnections: 2 });
  let seeded: Awaited<ReturnType<typeof seed>>;
  try {
    seeded = await seed(db, suffix);
  } finally {
    await db.$disconnect();
  }

  const fake = await loadStripeFake().FakeStripeServer.start();
  fake.addPrice({ id: E2E_PRICE_PRO, unitAmount: 1900 });
  const webhookSecret = `whsec_${randomBytes(16).toString("hex")}`;
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const clerkWebhookSecret = `whsec_${randomBytes(24).toString("base64")}`;
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const state: E2eState = {
    baseUrl,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    platformAdmin: {
      clerkUserId: `user_e2e_platform_${suffix}`,
      clerkOrgId: `org_e2e_staff_${suffix}`,
      email: `olive-${suffix}@zigznote.example`,
    },
    orgAdmin: {
      clerkUserId: `user_e2e_orgadmin_${suffix}`,
      clerkOrgId: `org_e2e_customer_${suffix}`,
    },
    overLimit: seeded.overLimit,
    suspended: seeded.suspended,
    suffix,
  };

  const logFile = path.join(RESULTS_DIR, "api-server.log");
  const log = createWriteStream(logFile);
  const server = spawn(process.execPath, [serverEntry], {
    cwd: API_DIR,
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "test",
      LOG_LEVEL: "info",
      HOST: "127.0.0.1",
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      JOBS_ENABLED: "false",
      CLERK_JWT_KEY: publicKey.export({ type: "spki", format: "pem" }).toString(),
      CLERK_WEBHOOK_SECRET: clerkWebhookSecret,
      PLATFORM_ADMIN_USER_IDS: state.platformAdmin.clerkUserId,
      STORAGE_DIR: mkdtempSync(path.join(tmpdir(), "zigznote-e2e-storage-")),
      ADMIN_CONSOLE_DIR: path.join(PACKAGE_DIR, "dist"),
      STRIPE_SECRET_KEY: fake.secretKey,
      STRIPE_API_HOST: "127.0.0.1",
      STRIPE_API_PORT: String(fake.port),
      STRIPE_API_PROTOCOL: "http",
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      STRIPE_PRICE_PRO: E2E_PRICE_PRO,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout?.pipe(log);
  server.stderr?.pipe(log);
  const stopServer = async () => {
    if (server.exitCode !== null) return;
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    if (server.exitCode === null) server.kill("SIGKILL");
  };
  const stop = async () => {
    await stopServer();
    await fake.close();
  };
  try {
    await waitForHealth(baseUrl, server, logFile);
    const token = signSessionToken(state, state.platformAdmin);
    // The operator as Clerk knows them: their first request provisions them from the token,
    // then Clerk's user.created webhook (signed with the secret the server trusts) names them.
    const me = await fetch(`${baseUrl}/api/v1/me`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!me.ok) throw new Error(`/api/v1/me answered ${me.status}: ${await me.text()}`);
    await deliverClerkUser(baseUrl, clerkWebhookSecret, {
      id: state.platformAdmin.clerkUserId,
      email: state.platformAdmin.email,
      firstName: "Olive",
      lastName: "Operator",
    });
    // The violations come from the API's own check (usage against the plan), as in production.
    for (const organizationId of seeded.recheck) {
      const res = await fetch(
        `${baseUrl}/api/v1/admin/organizations/${organizationId}/recheck-violations`,
        {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ reason: "e2e seed: detect the violations of the seeded usage" }),
        },
      );
      if (!res.ok)
        throw new Error(`recheck-violations answered ${res.status}: ${await res.text()}`);
    }
    const billingDb = createPrismaClient(databaseUrl, { maxConnections: 2 });
    try {
      state.disputed = await seedStripeHistory(billingDb, fake, { baseUrl, webhookSecret, suffix });
    } finally {
      await billingDb.$disconnect();
    }
  } catch (error) {
    await stop();
    throw error;
  }
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2));
  return stop;
}
