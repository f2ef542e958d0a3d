/**
 * Stored answers of `Idempotency-Key` requests (idempotency.ts): sealed with AES-256-GCM under a
 * key derived from the Idempotency-Key, which only the client knows, so that the database holds
 * no answer (an API key's secret, say) in clear.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomFillSync,
} from "node:crypto";

/** An answer as a handler describes it for `recordInTransaction`: what it will send. */
export interface IdempotentAnswer {
  status: number;
  /** Sent as JSON; omit for an empty answer (204). */
  body?: unknown;
  /** `Location`, say. */
  headers?: Record<string, string>;
}

/** What seals and opens one key's answer. */
export interface AnswerKey {
  organizationId: string;
  /** The key's name in the table: the additional data each seal authenticates. */
  keyHash: Buffer;
  /** `answerSecret` of the key. */
  secret: Buffer;
  /** The Idempotency-Key itself, for `legacyAnswerSecret`. */
  key: string;
}

/**
 * The key an answer is encrypted with: HMAC-SHA256 keyed by the Idempotency-Key (which only the
 * client knows) over the organization.
 */
export function answerSecret(key: string, organizationId: string): Buffer {
  return createHmac("sha256", key).update(`zigznote idempotent answer\0${organizationId}`).digest();
}

/**
 * The key answers stored before `answerSecret` were encrypted with (HKDF-SHA256, several times
 * its CPU on every keyed write): a replay of one decrypts with it until the answer expires
 * (IDEMPOTENCY_KEY_TTL_HOURS after the deploy, nothing stored needs it).
 */
function legacyAnswerSecret(key: string, organizationId: string): Buffer {
  return Buffer.from(hkdfSync("sha256", key, organizationId, "zigznote idempotent answer", 32));
}

const IV_BYTES = 12;
/** Random bytes drawn ahead for IVs: one call to the CSPRNG per 341 answers sealed, not per answer. */
const ivPool = Buffer.alloc(IV_BYTES * 341);
let ivOffset = ivPool.length;

/** A random IV (GCM's 96 bits): 12 bytes of the CSPRNG's output, each handed out once. */
function nextIv(): Buffer {
  if (ivOffset + IV_BYTES > ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  const iv = Buffer.from(ivPool.subarray(ivOffset, ivOffset + IV_BYTES));
  ivOffset += IV_BYTES;
  return iv;
}

function encrypt(secret: Buffer, aad: Buffer, plain: readonly Buffer[]): Buffer {
  const iv = nextIv();
  const cipher = createCipheriv("aes-256-gcm", secret, iv);
  cipher.setAAD(aad);
  // In order: the IV, the ciphertext of each part, then the tag (known once final() ran).
  const sealed = [iv, ...plain.map((part) => cipher.update(part)), cipher.final()];
  sealed.push(cipher.getAuthTag());
  return Buffer.concat(sealed);
}

function decrypt(secret: Buffer, aad: Buffer, stored: Buffer): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", secret, stored.subarray(0, 12));
  decipher.setAAD(aad);
  decipher.setAuthTag(stored.subarray(stored.length - 16));
  return Buffer.concat([
    decipher.update(stored.subarray(12, stored.length - 16)),
    decipher.final(),
  ]);
}

/** A stored answer: its headers and body. */
interface StoredAnswer {
  headers: Record<string, string>;
  body: Buffer;
}

/** The headers as JSON, a line feed, the body's bytes (JSON escapes every line feed it holds). */
export function sealAnswer(
  claim: AnswerKey,
  headers: Record<string, string>,
  body: Buffer,
): Buffer {
  return encrypt(claim.secret, claim.keyHash, [Buffer.from(`${JSON.stringify(headers)}\n`), body]);
}

/** `sealAnswer`'s answer, or one stored before it (sealed with `legacyAnswerSecret`). */
export function openAnswer(claim: AnswerKey, stored: Buffer): StoredAnswer {
  let plain: Buffer;
  try {
    plain = decrypt(claim.secret, claim.keyHash, stored);
  } catch {
    // Not authenticated with today's key: an answer stored with the earlier derivation, as JSON
    // with the body in base64.
    const legacy = JSON.parse(
      decrypt(
        legacyAnswerSecret(claim.key, claim.organizationId),
        claim.keyHash,
        stored,
      ).toString(),
    ) as { headers: Record<string, string>; body: string };
    return { headers: legacy.headers, body: Buffer.from(legacy.body, "base64") };
  }
  const end = plain.indexOf(0x0a);
  return {
    headers: JSON.parse(plain.subarray(0, end).toString()) as Record<string, string>,
    body: plain.subarray(end + 1),
  };
}

/** The headers and body an answer is sent with (JSON, as `send` sends it). */
export function answerParts(answer: IdempotentAnswer): [Record<string, string>, Buffer] {
  const body =
    answer.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(answer.body));
  const headers = {
    ...(answer.body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
    ...Object.fromEntries(
      Object.entries(answer.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]),
    ),
  };
  return [headers, body];
}
