import { pipeline, Readable, Transform } from "node:stream";

/**
 * One download of a provider's media (its URL is a secret: a pre-signed link, never logged).
 * `abort` ends it (the body errors with the reason); so does `idleTimeoutMs` without a byte.
 * Destroying the body closes the connection.
 */
export interface MediaResponse {
  /** 200 (the whole object) or 206 (the part a Range asked for). */
  status: 200 | 206;
  headers: Headers;
  body: Readable;
}

/** Opens the download; any answer but 200 or 206 is an error (`media download answered <n>`). */
export async function openMediaDownload(
  url: string,
  input: { idleTimeoutMs: number; signal: AbortSignal; headers?: Record<string, string> },
): Promise<MediaResponse> {
  const idle = new AbortController();
  const timer = setTimeout(
    () =>
      idle.abort(
        new Error(`media download stalled: nothing received for ${input.idleTimeoutMs} ms`),
      ),
    input.idleTimeoutMs,
  );
  let response: Response;
  try {
    response = await fetch(url, {
      headers: input.headers ?? {},
      signal: AbortSignal.any([idle.signal, input.signal]),
    });
  } catch (error) {
    clearTimeout(timer);
    throw error;
  }
  if ((response.status !== 200 && response.status !== 206) || !response.body) {
    clearTimeout(timer);
    await response.body?.cancel();
    throw new Error(`media download answered ${response.status}`);
  }
  // Every chunk that arrives starts the idle timer again.
  const watched = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      timer.refresh();
      callback(null, chunk);
    },
  });
  pipeline(Readable.fromWeb(response.body), watched, () => clearTimeout(timer));
  return { status: response.status, headers: response.headers, body: watched };
}

/** A strong validator of the answer, usable in If-Range: its ETag, else its Last-Modified. */
export function validatorOf(headers: Headers): string | null {
  const etag = headers.get("etag");
  if (etag && !etag.startsWith("W/")) return etag;
  return headers.get("last-modified");
}

/** The parsed `Content-Range: bytes <start>-<end>/<total>` of a 206 (total null for `*`). */
export function parseContentRange(
  header: string | null,
): { start: number; end: number; total: number | null } | null {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header?.trim() ?? "");
  if (!match) return null;
  return {
    start: Number(match[1]),
    end: Number(match[2]),
    total: match[3] === "*" ? null : Number(match[3]),
  };
}
