import { createPrivateKey, randomUUID, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** What global setup hands the tests (a JSON file: workers start after it is written). */
export interface E2eState {
  baseUrl: string;
  /** PKCS#8 PEM of the key the API trusts for session tokens (CLERK_JWT_KEY is its public half). */
  privateKeyPem: string;
  /** The operator; Clerk's user.created (global setup) gives them this e-mail and a name. */
  platformAdmin: { clerkUserId: string; clerkOrgId: string; email: string };
  orgAdmin: { clerkUserId: string; clerkOrgId: string };
  /** The seeded organizations (names carry the run's suffix). */
  overLimit: { id: string; name: string };
  suspended: { id: string; name: string };
  /** Paid through Stripe's webhooks: a card on file, a confirmation pending, a dispute. */
  disputed?: { id: string; name: string };
  suffix: string;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const PACKAGE_DIR = path.resolve(here, "..");
export const RESULTS_DIR = path.join(PACKAGE_DIR, "test-results");
export const STATE_FILE = path.join(RESULTS_DIR, "e2e-state.json");
export const SCREENSHOT_DIR = path.join(RESULTS_DIR, "screenshots");

export function readState(): E2eState {
  return JSON.parse(readFileSync(STATE_FILE, "utf8")) as E2eState;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * A Clerk-shaped session JWT (RS256, claim layout v2) signed with the test's key, as
 * apps/api/test/support/auth.ts makes them: the API verifies it with the real @clerk/backend.
 */
export function signSessionToken(
  state: E2eState,
  who: { clerkUserId: string; clerkOrgId: string },
  role: "admin" | "member" = "admin",
): string {
  const iat = Math.floor(Date.now() / 1000);
  const payload = {
    azp: state.baseUrl,
    exp: iat + 3600,
    fva: [0, -1],
    iat,
    iss: "https://zigznote-e2e.clerk.accounts.dev",
    jti: randomUUID().replace(/-/g, "").slice(0, 20),
    nbf: iat - 10,
    sid: `sess_${randomUUID().replace(/-/g, "")}`,
    sub: who.clerkUserId,
    v: 2,
    sts: "active",
    o: { id: who.clerkOrgId, rol: role, slg: who.clerkOrgId, per: "", fpm: "" },
  };
  const header = { alg: "RS256", typ: "JWT", kid: "ins_zigznote_e2e" };
  const input = `${base64url(header)}.${base64url(payload)}`;
  const signature = sign("RSA-SHA256", Buffer.from(input), createPrivateKey(state.privateKeyPem));
  return `${input}.${signature.toString("base64url")}`;
}
