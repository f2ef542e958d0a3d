import { randomUUID } from "node:crypto";
import { BadGatewayError, ProviderNotConfiguredError, type ErrorCode } from "@zigznote/shared";
import { z } from "zod";
import type { Config } from "../config";
import type { Logger } from "../lib/logger";
import { inSpan, type Span } from "../lib/tracing";
import { toStorableString, toStorableText } from "../lib/text";
import type { ResolveMedia } from "../recordings";

/**
 * A client of Recall.ai's v1 bot API (`{RECALL_API_BASE_URL}/api/v1/bot/...`, authenticated with
 * `Authorization: Token <key>`).
 *
 * Retries follow Recall's documented error codes: 429 and 507 after `Retry-After`, 502/503/504
 * (load shedding), 409 on an idempotent request (the same Idempotency-Key is still being
 * processed), and network errors or timeouts, with capped exponential backoff and jitter. A POST
 * is only retried when it carries an Idempotency-Key, so a retry can never create a second bot.
 * Everything else, and running out of attempts, is a BadGatewayError (502 to our caller) with a
 * code saying which: RECALL_UNAVAILABLE, RECALL_RATE_LIMITED, RECALL_REJECTED, RECALL_NOT_FOUND,
 * RECALL_BAD_RESPONSE. Without RECALL_API_KEY every call is a ProviderNotConfiguredError (503).
 */

export const RecallStatusChangeSchema = z.looseObject({
  code: z.string(),
  sub_code: z.string().nullish(),
  message: z.string().nullish(),
  created_at: z.string(),
});

export const RecallRecordingSchema = z.looseObject({
  id: z.string(),
  created_at: z.string().nullish(),
  completed_at: z.string().nullish(),
  status: z.looseObject({ code: z.string() }).nullish(),
  media_shortcuts: z.record(z.string(), z.unknown()).nullish(),
});

export const RecallBotSchema = z.looseObject({
  id: z.string().min(1),
  bot_name: z.string().nullish(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  status_changes: z.array(RecallStatusChangeSchema).default([]),
  recordings: z.array(RecallRecordingSchema).default([]),
});

export type RecallStatusChange = z.infer<typeof RecallStatusChangeSchema>;
export type RecallRecording = z.infer<typeof RecallRecordingSchema>;
export type RecallBot = z.infer<typeof RecallBotSchema>;

export interface CreateRecallBotInput {
  meetingUrl: string;
  botName: string;
  /** Recall stores string values; ours are ids that let a webhook find its way back. */
  metadata: { meetingId: string; organizationId: string; botId?: string };
  /** Same key for every retry of one logical creation (we use our bot row's id). */
  idempotencyKey: string;
}

export interface RecallClientOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs: number;
  logger?: Logger;
  /** Waits between attempts; tests may replace it. */
  sleep?: (ms: number) => Promise<void>;
}

export type RecallErrorCode = Extract<ErrorCode, `RECALL_${string}`>;

/** A Recall error answer (after retries): carries Recall's HTTP status for callers to branch on. */
export class RecallRequestError extends BadGatewayError {
  constructor(
    message: string,
    code: RecallErrorCode,
    readonly recallStatus: number | null,
    details?: Record<string, unknown>,
  ) {
    super(message, {
      code,
      details: { ...details, ...(recallStatus === null ? {} : { recallStatus }) },
    });
  }
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504, 507]);

/**
 * The idempotency key of one attempt at a command that is harmless to repeat: its retries share
 * it, the next attempt gets a new one (never a counter, which a crash could reuse).
 */
function attemptKey(command: string, recallBotId: string): string {
  return `${command}:${recallBotId}:${randomUUID()}`;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Seconds (or an HTTP date) from a Retry-After header, as milliseconds; undefined if absent. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Recall's error bodies are `{ detail }`, `{ code, detail }` or field lists; keep them short. */
function describeErrorBody(body: unknown): string | undefined {
  if (body === null || body === undefined || body === "") return undefined;
  if (typeof body === "string") return body.slice(0, 300);
  if (typeof body === "object") {
    const detail = (body as { detail?: unknown }).detail;
    if (typeof detail === "string") return detail.slice(0, 300);
    return JSON.stringify(body).slice(0, 300);
  }
  return JSON.stringify(body).slice(0, 300);
}

type HttpMethod = "GET" | "POST" | "DELETE";

interface RequestOptions {
  body?: unknown;
  idempotencyKey?: string;
  /** What the caller is doing, for messages ("create a bot"). */
  action: string;
}

export class RecallClient {
  private readonly baseUrl: string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: RecallClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.sleep = options.sleep ?? defaultSleep;
  }

  /**
   * Throws ProviderNotConfiguredError (503) without RECALL_API_KEY: callers check it before they
   * write anything (a bot reservation, say), so a deployment without Recall leaves no trace.
   */
  assertConfigured(): void {
    if (!this.options.apiKey) {
      throw new ProviderNotConfiguredError(
        "Recording bots are not available: Recall is not configured on this server",
        { provider: "recall", variables: ["RECALL_API_KEY"] },
      );
    }
  }

  /**
   * The longest one call can take with its retries (every attempt timing out, the longest wait
   * between them): a bot reservation older than this is no longer waiting for Recall's answer.
   */
  longestCallMs(): number {
    const { timeoutMs, maxRetries, retryMaxMs } = this.options;
    return timeoutMs * (maxRetries + 1) + retryMaxMs * maxRetries;
  }

  /** Sends a bot to the meeting (`POST /api/v1/bot/`). */
  async createBot(input: CreateRecallBotInput): Promise<RecallBot> {
    const body = await this.request("POST", "/api/v1/bot/", {
      action: "create a bot",
      idempotencyKey: input.idempotencyKey,
      body: {
        meeting_url: input.meetingUrl,
        bot_name: input.botName,
        metadata: Object.fromEntries(
          Object.entries(input.metadata).filter(([, value]) => value !== undefined),
        ),
      },
    });
    return this.parseBot(body, "create a bot");
  }

  /** The bot as Recall sees it now (`GET /api/v1/bot/{id}/`). */
  async getBot(recallBotId: string): Promise<RecallBot> {
    const body = await this.request("GET", `/api/v1/bot/${encodeURIComponent(recallBotId)}/`, {
      action: "read a bot",
    });
    return this.parseBot(body, "read a bot");
  }

  /**
   * Asks the bot to leave the call (`POST /api/v1/bot/{id}/leave_call/`). Irreversible.
   *
   * Each call is one attempt with a key of its own, shared only by that attempt's retries.
   * Recall answers a repeated key from its cache for an hour, a refusal (4xx) included: with one
   * key per bot, a leave refused once (the bot not in the call yet) made every later leave of
   * that bot get the same refusal without reaching Recall. The random part keeps attempts apart
   * across restarts too; two attempts that both reach Recall are harmless (the second is told
   * the bot already left).
   */
  async leaveCall(
    recallBotId: string,
    idempotencyKey = attemptKey("leave_call", recallBotId),
  ): Promise<void> {
    await this.request("POST", `/api/v1/bot/${encodeURIComponent(recallBotId)}/leave_call/`, {
      action: "make a bot leave the call",
      idempotencyKey,
    });
  }

  /**
   * Deletes the bot's recordings at Recall (`POST /api/v1/bot/{id}/delete_media/`). A key per
   * attempt, as for `leaveCall`: deleting twice is harmless, a cached refusal is not.
   */
  async deleteMedia(
    recallBotId: string,
    idempotencyKey = attemptKey("delete_media", recallBotId),
  ): Promise<void> {
    await this.request("POST", `/api/v1/bot/${encodeURIComponent(recallBotId)}/delete_media/`, {
      action: "delete a bot's media",
      idempotencyKey,
    });
  }

  /**
   * Deletes a scheduled bot that Recall has not dispatched yet (`DELETE /api/v1/bot/{id}/`, 204):
   * it will never join. Once dispatched (a bot without `join_at` is, at creation) Recall answers
   * 405, a RECALL_REJECTED; a bot it no longer has is a RECALL_NOT_FOUND. Retried like a read:
   * a repeat after a lost answer finds the bot gone (404).
   */
  async deleteBot(recallBotId: string): Promise<void> {
    await this.request("DELETE", `/api/v1/bot/${encodeURIComponent(recallBotId)}/`, {
      action: "delete a scheduled bot",
    });
  }

  private parseBot(body: unknown, action: string): RecallBot {
    const parsed = RecallBotSchema.safeParse(body);
    if (!parsed.success) {
      throw new RecallRequestError(
        `Recall answered an unusable response when asked to ${action}`,
        "RECALL_BAD_RESPONSE",
        null,
      );
    }
    return parsed.data;
  }

  private backoff(attempt: number): number {
    const exponential = this.options.retryBaseMs * 2 ** attempt;
    const capped = Math.min(this.options.retryMaxMs, exponential);
    // Full jitter in the upper half: spreads retries of many instances without collapsing to 0.
    return Math.round(capped / 2 + Math.random() * (capped / 2));
  }

  /**
   * One span per call (`recall create a bot`), whose children are the HTTP attempts (fetch's
   * instrumentation); it records how many attempts the call took.
   */
  private async request(
    method: HttpMethod,
    path: string,
    options: RequestOptions,
  ): Promise<unknown> {
    this.assertConfigured();
    const attributes = { "peer.service": "recall", "http.request.method": method };
    return inSpan(`recall ${options.action}`, { attributes }, (span) =>
      this.requestWithRetries(method, path, options, span),
    );
  }

  private async requestWithRetries(
    method: HttpMethod,
    path: string,
    options: RequestOptions,
    span: Span,
  ): Promise<unknown> {
    const apiKey = this.options.apiKey!;
    // A POST without an idempotency key is not safe to repeat: it is tried once.
    const canRetry = method !== "POST" || options.idempotencyKey !== undefined;
    const maxAttempts = canRetry ? this.options.maxRetries + 1 : 1;
    const headers: Record<string, string> = {
      Authorization: `Token ${apiKey}`,
      Accept: "application/json",
    };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;

    let lastFailure = "";
    for (let attempt = 0; attempt < maxAttempts; attempt += 1) {
      span.setAttribute("zigznote.recall.attempts", attempt + 1);
      const isLast = attempt === maxAttempts - 1;
      let response: Response;
      try {
        response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: AbortSignal.timeout(this.options.timeoutMs),
        });
      } catch (error) {
        // Duck-typed: the timeout is a DOMException, not always an Error of this realm.
        const failure = error as { name?: string; message?: string; cause?: { message?: string } };
        const isTimeout = failure?.name === "TimeoutError" || failure?.name === "AbortError";
        lastFailure = isTimeout
          ? `no answer within ${this.options.timeoutMs} ms`
          : `network error (${failure?.cause?.message ?? failure?.message ?? "unknown"})`;
        if (isLast) break;
        const wait = this.backoff(attempt);
        this.options.logger?.warn(
          { method, path, attempt: attempt + 1, wait, reason: lastFailure },
          "recall request failed; retrying",
        );
        await this.sleep(wait);
        continue;
      }

      // Recall's answers reach text columns (statuses, ids, error details in a bot's terminal
      // reason): made storable (see lib/text.ts).
      const text = toStorableString(await response.text());
      let body: unknown = text;
      if (text.length > 0) {
        try {
          body = toStorableText(JSON.parse(text));
        } catch {
          body = text;
        }
      } else {
        body = null;
      }
      if (response.ok) return body;

      const status = response.status;
      const detail = describeErrorBody(body);
      const isRetryable =
        RETRYABLE_STATUSES.has(status) || (status === 409 && options.idempotencyKey !== undefined);
      if (!isRetryable) {
        if (status === 404) {
          throw new RecallRequestError(
            `Recall does not know this bot (asked to ${options.action})`,
            "RECALL_NOT_FOUND",
            status,
          );
        }
        if (status >= 500) {
          throw new RecallRequestError(
            `Recall failed to ${options.action} (HTTP ${status}${detail ? `: ${detail}` : ""})`,
            "RECALL_UNAVAILABLE",
            status,
          );
        }
        throw new RecallRequestError(
          `Recall refused to ${options.action} (HTTP ${status}${detail ? `: ${detail}` : ""})`,
          "RECALL_REJECTED",
          status,
          detail ? { recallDetail: detail } : undefined,
        );
      }

      lastFailure = `HTTP ${status}${detail ? `: ${detail}` : ""}`;
      if (isLast) break;
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      if (retryAfter !== undefined && retryAfter > this.options.retryMaxMs) {
        // Recall asks for a longer pause than a request can wait: fail now, say when to retry.
        const seconds = Math.ceil(retryAfter / 1000);
        throw new RecallRequestError(
          `Recall is busy and asked to retry in ${seconds} s (asked to ${options.action}); try again later`,
          "RECALL_RATE_LIMITED",
          status,
          { retryAfterSeconds: seconds },
        );
      }
      const wait = retryAfter ?? this.backoff(attempt);
      this.options.logger?.warn(
        { method, path, attempt: attempt + 1, status, wait },
        "recall request failed; retrying",
      );
      await this.sleep(wait);
    }

    throw new RecallRequestError(
      `Recall is unavailable: could not ${options.action} after ${maxAttempts} attempt${maxAttempts === 1 ? "" : "s"} (${lastFailure})`,
      "RECALL_UNAVAILABLE",
      null,
      { attempts: maxAttempts },
    );
  }
}

/** The app's Recall client, from its configuration. */
export function createRecallClient(config: Config, logger?: Logger): RecallClient {
  return new RecallClient({
    baseUrl: config.RECALL_API_BASE_URL,
    apiKey: config.RECALL_API_KEY,
    timeoutMs: config.RECALL_TIMEOUT_MS,
    maxRetries: config.RECALL_MAX_RETRIES,
    retryBaseMs: config.RECALL_RETRY_BASE_MS,
    retryMaxMs: config.RECALL_RETRY_MAX_MS,
    logger,
  });
}

/** The download link of a Recall recording's mixed video, if Recall has finished it. */
export function recordingDownloadOf(
  recording: RecallRecording,
): { url: string; contentType: string } | null {
  const shortcut = recording.media_shortcuts?.video_mixed;
  if (!shortcut || typeof shortcut !== "object") return null;
  const { status, data, format } = shortcut as {
    status?: { code?: unknown } | null;
    data?: { download_url?: unknown } | null;
    format?: unknown;
  };
  if (status?.code !== undefined && status.code !== "done") return null;
  const url = data?.download_url;
  if (typeof url !== "string" || url.length === 0) return null;
  return { url, contentType: format === "webm" ? "video/webm" : "video/mp4" };
}

/**
 * `resolveMedia` for recording imports of Recall bots (`externalId` is the Recall bot id): asks
 * Recall for the bot each time, because the pre-signed download links expire. The newest
 * recording with a finished mixed video wins. Used after the ready webhook and by the periodic
 * retry job alike.
 */
export function createRecallMediaResolver(recall: RecallClient): ResolveMedia {
  return async (recordingImport) => {
    const bot = await recall.getBot(recordingImport.externalId);
    for (let i = bot.recordings.length - 1; i >= 0; i -= 1) {
      const location = recordingDownloadOf(bot.recordings[i]!);
      if (location) return location;
    }
    throw new Error(`Recall bot ${bot.id} has no downloadable recording yet`);
  };
}
