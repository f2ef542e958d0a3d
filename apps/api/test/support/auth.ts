import { generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import {
  createMembership,
  createOrganization,
  createUser,
  uniqueSuffix,
} from "@zigznote/database/testing";
import type { Scope } from "../../src/http/scopes";
import { createApiKey as createApiKeyRow } from "../../src/identity";
import type { TestApp } from "./helpers";

/**
 * Clerk at its network edge: the tests own the RSA key that signs session JWTs, and the app
 * verifies them with the real `@clerk/backend` against the public half (CLERK_JWT_KEY).
 */

export interface TestKeyPair {
  /** SPKI PEM, as Clerk's dashboard shows it ("PEM Public Key"): the value of CLERK_JWT_KEY. */
  publicKeyPem: string;
  privateKey: KeyObject;
}

/** A fresh RSA-2048 key pair (Clerk signs RS256 with 2048-bit keys). */
export function generateTestKeyPair(): TestKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(), privateKey };
}

let defaultKeys: TestKeyPair | undefined;
/** The key pair every test app trusts by default (made once per test file). */
export function defaultTestKeyPair(): TestKeyPair {
  defaultKeys ??= generateTestKeyPair();
  return defaultKeys;
}

/** The `azp` the test apps accept (CLERK_AUTHORIZED_PARTIES). */
export const TEST_AUTHORIZED_PARTY = "http://localhost:3000";

/** Environment making an app trust `keys` (default: the shared test pair) for session JWTs. */
export function clerkTestEnv(keys: TestKeyPair = defaultTestKeyPair()): Record<string, string> {
  return { CLERK_JWT_KEY: keys.publicKeyPem, CLERK_AUTHORIZED_PARTIES: TEST_AUTHORIZED_PARTY };
}

export interface ClerkTokenOptions {
  userId: string;
  /** Active organization's Clerk id; omit (or null) for a session without one. */
  orgId?: string | null;
  /** Clerk role key: `org:admin` (default) or `org:member`. */
  orgRole?: string;
  orgSlug?: string;
  /** Claim layout: 2 (default, `o: { id, rol, slg }`) or 1 (`org_id`, `org_role`, `org_slug`). */
  version?: 1 | 2;
  /** Issue time (default: now) and lifetime (default 60 s, as Clerk's session tokens). */
  issuedAt?: Date;
  expiresInSeconds?: number;
  azp?: string;
  /** Signing key (default: the shared test pair's private key). */
  privateKey?: KeyObject;
  /** Extra or replacing claims, applied last. */
  claims?: Record<string, unknown>;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A Clerk-shaped session JWT (RS256), signed with a key the test owns. */
export function signClerkToken(options: ClerkTokenOptions): string {
  const iat = Math.floor((options.issuedAt ?? new Date()).getTime() / 1000);
  const version = options.version ?? 2;
  const role = options.orgRole ?? "org:admin";
  const payload: Record<string, unknown> = {
    azp: options.azp ?? TEST_AUTHORIZED_PARTY,
    exp: iat + (options.expiresInSeconds ?? 60),
    fva: [0, -1],
    iat,
    iss: "https://zigznote-test.clerk.accounts.dev",
    jti: randomUUID().replace(/-/g, "").slice(0, 20),
    nbf: iat - 10,
    sid: `sess_${uniqueSuffix()}`,
    sub: options.userId,
  };
  if (version === 2) {
    payload.v = 2;
    payload.sts = "active";
    if (options.orgId) {
      payload.o = {
        id: options.orgId,
        rol: role.replace(/^org:/, ""),
        slg: options.orgSlug ?? options.orgId,
        per: "",
        fpm: "",
      };
    }
  } else if (options.orgId) {
    payload.org_id = options.orgId;
    payload.org_role = role;
    payload.org_slug = options.orgSlug ?? options.orgId;
    payload.org_permissions = [];
  }
  Object.assign(payload, options.claims);
  const header = { alg: "RS256", typ: "JWT", kid: "ins_zigznote_test" };
  const signingInput = `${base64url(header)}.${base64url(payload)}`;
  const signature = sign(
    "RSA-SHA256",
    Buffer.from(signingInput),
    options.privateKey ?? defaultTestKeyPair().privateKey,
  );
  return `${signingInput}.${signature.toString("base64url")}`;
}

/** Creates an API key for the organization through the real key service; returns the plain key. */
export async function createApiKey(
  testApp: TestApp,
  options: { organizationId: string; scopes: readonly Scope[]; name?: string; expiresAt?: Date },
): Promise<string> {
  const { plainKey } = await createApiKeyRow(testApp.ctx, {
    organizationId: options.organizationId,
    name: options.name ?? `test key ${uniqueSuffix()}`,
    scopes: options.scopes,
    expiresAt: options.expiresAt ?? null,
  });
  return plainKey;
}

export interface AuthenticatedCaller {
  organizationId: string;
  userId: string;
  orgClerkId: string;
  userClerkId: string;
  token: string;
  headers: { Authorization: string };
}

/**
 * An organization (new, or the given one) with a user of `role`, and a session token for them.
 * `headers` goes straight into supertest's `.set(...)`. Tokens live 60 s; sign a new one with
 * `signClerkToken({ userId: userClerkId, orgId: orgClerkId })` for longer tests.
 */
export async function authHeaderFor(
  testApp: TestApp,
  options: { role?: "admin" | "member"; organizationId?: string } = {},
): Promise<AuthenticatedCaller> {
  const db = testApp.ctx.db;
  const role = options.role ?? "admin";
  const organization = options.organizationId
    ? await db.organization.findUniqueOrThrow({ where: { id: options.organizationId } })
    : await createOrganization(db);
  if (!organization.clerkId) throw new Error("authHeaderFor needs an organization with a clerkId");
  const user = await createUser(db);
  await createMembership(db, { organizationId: organization.id, userId: user.id, role });
  const token = signClerkToken({
    userId: user.clerkId,
    orgId: organization.clerkId,
    orgRole: `org:${role}`,
  });
  return {
    organizationId: organization.id,
    userId: user.id,
    orgClerkId: organization.clerkId,
    userClerkId: user.clerkId,
    token,
    headers: { Authorization: `Bearer ${token}` },
  };
}

/**
 * Hour-long headers for `caller` as an org admin who is also a platform admin, for a file that
 * signs in once (the default token lives 60 s) and must reach the admin routes too.
 */
export function platformAdminHeadersFor(caller: AuthenticatedCaller): { Authorization: string } {
  const token = signClerkToken({
    userId: caller.userClerkId,
    orgId: caller.orgClerkId,
    orgRole: "org:admin",
    expiresInSeconds: 3600,
    claims: { metadata: { platformAdmin: true } },
  });
  return { Authorization: `Bearer ${token}` };
}

/** An API key with `scopes` for the organization (new when not given), ready as headers. */
export async function apiKeyHeaderFor(
  testApp: TestApp,
  options: { scopes: readonly Scope[]; organizationId?: string },
): Promise<{ organizationId: string; key: string; headers: { Authorization: string } }> {
  const organizationId = options.organizationId ?? (await createOrganization(testApp.ctx.db)).id;
  const key = await createApiKey(testApp, { organizationId, scopes: options.scopes });
  return { organizationId, key, headers: { Authorization: `Bearer ${key}` } };
}
