import { createHash } from "node:crypto";

/**
 * How the Idempotency-Key kernel names a key in `idempotency_keys` (src/http/idempotency.ts):
 * SHA-256 of "key", the organization and the key, each followed by a NUL. Computed here on its
 * own, so that a test reading the table checks the kernel rather than repeating it.
 */
export function keyHash(organizationId: string, key: string): Buffer {
  const hash = createHash("sha256");
  for (const part of ["key", organizationId, key]) hash.update(part).update("\0");
  return hash.digest();
}
