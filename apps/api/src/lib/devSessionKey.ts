/**
 * The development sign-in: `pnpm dev:token` signs Clerk-shaped session tokens with a local RSA
 * key, and a server trusts that key's public half only while Clerk is not configured, the database
 * is the embedded one and NODE_ENV is not production. The key lives in one file under the
 * git-ignored data folder (DEV_SESSION_KEY_FILE); whichever of the server and the command comes
 * first creates it.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
  type KeyObject,
} from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config";

/** What a newcomer types (from the repository root) for a first session token. */
export const DEV_TOKEN_COMMAND = "pnpm -s dev:token --org acme --role admin";

/**
 * Why this configuration must not trust the development key, or null when it may.
 * `isEmbeddedDatabase`: the server runs on the embedded database (no DATABASE_URL).
 */
export function devSessionKeyRefusal(config: Config, isEmbeddedDatabase: boolean): string | null {
  if (config.NODE_ENV === "production") return "NODE_ENV is production";
  if (config.CLERK_JWT_KEY) return "CLERK_JWT_KEY is set: session tokens come from Clerk";
  if (config.CLERK_SECRET_KEY) return "CLERK_SECRET_KEY is set: session tokens come from Clerk";
  if (!isEmbeddedDatabase) {
    return "DATABASE_URL is set: development tokens need the embedded database";
  }
  return null;
}

/**
 * The development key's public half (PEM) when this server may trust it (created on first use),
 * else null with the reason.
 */
export function openDevSessionKey(
  config: Config,
  isEmbeddedDatabase: boolean,
): { publicKeyPem: string | null; refusal: string | null } {
  const refusal = devSessionKeyRefusal(config, isEmbeddedDatabase);
  if (refusal !== null) return { publicKeyPem: null, refusal };
  const privateKey = loadOrCreateDevSessionKey(config.DEV_SESSION_KEY_FILE);
  return { publicKeyPem: devSessionPublicKeyPem(privateKey), refusal: null };
}

/** The private key in `file` (PKCS#8 PEM), created (mode 0600) when the file does not exist. */
export function loadOrCreateDevSessionKey(file: string): KeyObject {
  const keyFile = path.resolve(file);
  let existing: Buffer;
  try {
    existing = readFileSync(keyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return createDevSessionKey(keyFile);
  }
  return readPrivateKey(keyFile, existing);
}

/** Reads the key file; only an RSA-2048 key will do (what Clerk's verification reads). */
function readPrivateKey(keyFile: string, pem: Buffer): KeyObject {
  let key: KeyObject | undefined;
  try {
    key = createPrivateKey(pem);
  } catch {
    key = undefined;
  }
  if (key?.asymmetricKeyType !== "rsa" || key.asymmetricKeyDetails?.modulusLength !== 2048) {
    throw new Error(
      `DEV_SESSION_KEY_FILE ${keyFile} is not an RSA-2048 private key (PEM); delete it and a new one is made`,
    );
  }
  return key;
}

function createDevSessionKey(keyFile: string): KeyObject {
  mkdirSync(path.dirname(keyFile), { recursive: true });
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  // Written aside, then linked into place: a concurrent reader never sees half a key, and of two
  // concurrent creators the first link wins and the other reads its key.
  const draft = `${keyFile}.${process.pid}.${randomUUID()}`;
  writeFileSync(draft, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  try {
    linkSync(draft, keyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return readPrivateKey(keyFile, readFileSync(keyFile));
  } finally {
    unlinkSync(draft);
  }
  return privateKey;
}

/** The public half as SPKI PEM: what the session verification takes as its JWT key. */
export function devSessionPublicKeyPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
}

export interface DevSessionTokenOptions {
  /** Clerk user id (`sub`). */
  userId: string;
  /** Clerk organization id and slug (the organization is named after the slug when created). */
  orgId: string;
  orgSlug: string;
  role: "admin" | "member";
  ttlSeconds: number;
  now?: Date;
  /** Adds the platform-admin claim (the admin console, `/api/v1/admin`). */
  isPlatformAdmin?: boolean;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

/**
 * A session JWT in Clerk's v2 layout (`o: { id, rol, slg }`), RS256-signed with `privateKey`, so
 * the same verification and first-request provisioning run as for a token from Clerk. No `azp`:
 * it names no browser origin.
 */
export function signDevSessionToken(
  privateKey: KeyObject,
  options: DevSessionTokenOptions,
): string {
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const payload = {
    exp: iat + options.ttlSeconds,
    iat,
    iss: "zigznote-dev-token",
    jti: randomUUID().replace(/-/g, ""),
    nbf: iat - 5,
    sid: `sess_dev_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
    sub: options.userId,
    v: 2,
    sts: "active",
    o: { id: options.orgId, rol: options.role, slg: options.orgSlug, per: "", fpm: "" },
    // The claim a Clerk session-token template adds for platform admins (README).
    ...(options.isPlatformAdmin ? { platform_admin: true } : {}),
  };
  const header = { alg: "RS256", typ: "JWT", kid: "zigznote-dev" };
  const signingInput = `${base64url(header)}.${base64url(payload)}`;
  const signature = sign("RSA-SHA256", Buffer.from(signingInput), privateKey);
  return `${signingInput}.${signature.toString("base64url")}`;
}
