import { createPublicKey, type KeyObject } from "node:crypto";

/**
 * Reads CLERK_JWT_KEY the way it must be for `@clerk/backend`: Clerk's SDK only looks at the key
 * when a token arrives, and with a key it cannot use it answers every token 401 without a word.
 * Reading it at start-up turns that into a message naming the variable.
 */
export type ParsedClerkJwtKey = { ok: true; pem: string } | { ok: false; problem: string };

const PEM_SHAPE = "Clerk's PEM public key (-----BEGIN PUBLIC KEY----- ...)";

/**
 * Parses Clerk's JWT public key: a PEM block, or its base64 body alone as Clerk also accepts.
 * Returns it as canonical SPKI PEM. Clerk signs session tokens with RS256 on an RSA-2048 key, and
 * its SDK reads the key by that shape, so any other key is refused here.
 */
export function parseClerkJwtKey(value: string): ParsedClerkJwtKey {
  if (/PRIVATE KEY/.test(value)) {
    return { ok: false, problem: `this is a private key; set ${PEM_SHAPE} instead` };
  }
  let key: KeyObject;
  try {
    key = value.includes("-----BEGIN")
      ? createPublicKey(value)
      : createPublicKey({
          key: Buffer.from(value.replace(/\s+/g, ""), "base64"),
          format: "der",
          type: "spki",
        });
  } catch {
    return { ok: false, problem: `expected ${PEM_SHAPE}; this value is not a readable key` };
  }
  const details = key.asymmetricKeyDetails;
  if (
    key.asymmetricKeyType !== "rsa" ||
    details?.modulusLength !== 2048 ||
    details.publicExponent !== 65537n
  ) {
    const kind = `${key.asymmetricKeyType ?? "unknown"}${details?.modulusLength ? ` ${details.modulusLength}-bit` : ""}`;
    return {
      ok: false,
      problem: `expected ${PEM_SHAPE} of an RSA 2048-bit key, as Clerk issues; this is a ${kind} key`,
    };
  }
  return { ok: true, pem: key.export({ type: "spki", format: "pem" }).toString() };
}
