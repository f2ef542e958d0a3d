/**
 * A local stand-in for Recall.ai's v1 bot API, for tests and benchmarks. It listens on
 * 127.0.0.1 (port 0: any free port) and speaks the parts of the real API we use:
 *
 *   POST /api/v1/bot/                     create a bot  -> 201 bot
 *   GET  /api/v1/bot/{id}/                read a bot    -> 200 bot | 404 { detail }
 *   POST /api/v1/bot/{id}/leave_call/     leave         -> 200 bot (a `call_ended` status is added)
 *                                                          | 400 { detail } (not in the call yet, or ended)
 *   POST /api/v1/bot/{id}/delete_media/   delete media  -> 200 bot (recordings emptied)
 *   DELETE /api/v1/bot/{id}/              delete a bot  -> 204 (scheduled, not dispatched) | 405 { detail }
 *
 * (trailing slashes optional). A bot is `{ id, bot_name, meeting_url, metadata, join_at,
 * status_changes: [{ code, sub_code, message, created_at }], recordings: [...] }`.
 *
 * Like Recall:
 * - every request needs `Authorization: Token <apiKey>` (else 401 `{ detail }`);
 * - a create without `meeting_url` is a 400 with a field error;
 * - `Idempotency-Key` on POST/PUT/PATCH is scoped to (key, method, path): while the first request
 *   with a key is still being processed a second one gets 409; once it completed, a repeat within
 *   an hour gets the first response again (same status and body, a 4xx refusal too) without
 *   acting again (docs.recall.ai, "Idempotency");
 * - `leave_call` is refused (400) to a bot that has ended (`call_ended`, `done`, `fatal`) and to
 *   one that is not in the call yet: its latest status is `joining_call` or `in_waiting_room`, or
 *   it is a scheduled bot not dispatched yet. (A bot at `ready` that is dispatched is let go: the
 *   tests' bots sit there, and Recall dispatches a bot without `join_at` at once.);
 * - `DELETE` works only on a scheduled bot not dispatched yet (docs.recall.ai, "Delete Scheduled
 *   Bot"; 405 otherwise, "API Errors"), which it removes (a later GET is a 404). A bot is
 *   scheduled when its `join_at` is more than 10 minutes ahead (Recall's threshold for scheduled
 *   bots); the fake dispatches it when that is no longer so. Set `join_at` with `updateBot` to
 *   make one: `recall.updateBot(id, (bot) => { bot.join_at = inOneHour })`.
 *
 * Usage:
 *   const recall = await startFakeRecall();            // { apiKey: "test-recall-key" } by default
 *   env: { RECALL_API_BASE_URL: recall.baseUrl, RECALL_API_KEY: recall.apiKey }
 *   recall.requests                                    // every request: method, path, headers
 *                                                      //   (lower-case names), body (parsed JSON)
 *   recall.requestsTo("POST", "/api/v1/bot/")          // filtered by method and exact path
 *   recall.createdBots()                               // bots actually created (not replays)
 *   recall.failNext({ status: 500 })                   // next matching request fails...
 *   recall.failNext({ status: 429, retryAfter: "1" }, { times: 2, method: "POST", path: /^\/api\/v1\/bot\/$/ })
 *   recall.failNext({ hang: true })                    // ...never answers (client timeout)
 *   recall.failNext({ reset: true })                   // ...connection destroyed (network error)
 *   recall.failNext({ status: 400, body: { detail: "Invalid meeting URL" } })
 *   recall.failNext({ status: 400, body, fromEndpoint: true })   // ...the endpoint's own answer
 *   recall.setLatency(ms)                              // delay every answer (bot creation time)
 *   recall.addStatusChange(id, { code: "in_call_recording" })   // programmable state for GET
 *   recall.updateBot(id, (bot) => { bot.recordings.push(...) })
 *   recall.addRecording(id, { downloadUrl })           // a finished recording, as GET shows it
 *   recall.reset()                                     // forget requests, bots, keys, failures
 *   await recall.close()                               // also ends hanging requests
 *
 * Injected failures are answered before the idempotency layer (as Recall's load balancer and
 * rate limiter would): they are not cached, so a retry with the same key gets a real answer.
 * One marked `fromEndpoint` is the endpoint's own answer instead (a refusal that depends on the
 * bot's state at the time, such as a bot not in the call yet): it is given in place of acting,
 * behind the idempotency layer, so a repeat of its key gets it again from the cache.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { listenLocally } from "./listen";
import { failSilently } from "./silentFailure";

export interface FakeRecallStatusChange {
  code: string;
  sub_code: string | null;
  message: string | null;
  created_at: string;
}

export interface FakeRecallBot {
  id: string;
  bot_name: string;
  meeting_url: { platform: string; meeting_id: string; raw: string };
  metadata: Record<string, unknown>;
  join_at: string | null;
  status_changes: FakeRecallStatusChange[];
  recordings: Record<string, unknown>[];
}

export interface RecordedRecallRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  at: number;
}

export type FakeRecallFailure =
  | { status: number; body?: unknown; retryAfter?: string; fromEndpoint?: boolean }
  | { hang: true }
  | { reset: true };

export interface FailureMatch {
  /** How many matching requests fail (default 1). */
  times?: number;
  method?: string;
  path?: RegExp;
}

interface PendingFailure {
  failure: FakeRecallFailure;
  remaining: number;
  method?: string;
  path?: RegExp;
}

interface CachedResponse {
  status: number;
  body: unknown;
  at: number;
}

const IDEMPOTENCY_WINDOW_MS = 60 * 60 * 1000;

/** Recall schedules a bot whose `join_at` is more than this far ahead; sooner, it is dispatched. */
const SCHEDULED_AHEAD_MS = 10 * 60 * 1000;

/** Statuses of a bot that Recall has dispatched but that is not in the call yet. */
const NOT_IN_CALL_YET = new Set(["joining_call", "in_waiting_room"]);

/** Statuses after which the bot has left the call. */
const ENDED = new Set(["call_ended", "done", "fatal"]);

function isDispatched(bot: FakeRecallBot): boolean {
  if (bot.join_at === null) return true;
  return Date.parse(bot.join_at) - Date.now() <= SCHEDULED_AHEAD_MS;
}

/** Recall's answer to `leave_call`: the bot leaves (a `call_ended` is added), or a refusal. */
function leaveCall(bot: FakeRecallBot): { status: number; body: unknown } {
  const last = bot.status_changes[bot.status_changes.length - 1]?.code ?? "";
  if (ENDED.has(last)) {
    return {
      status: 400,
      body: { code: "cannot_command_completed_bot", detail: "Bot has already left the call." },
    };
  }
  if (NOT_IN_CALL_YET.has(last) || !isDispatched(bot)) {
    return { status: 400, body: { detail: "Bot is not in the call yet." } };
  }
  bot.status_changes.push({
    code: "call_ended",
    sub_code: "bot_received_leave_call",
    message: null,
    created_at: new Date().toISOString(),
  });
  return { status: 200, body: bot };
}

export interface FakeRecall {
  readonly baseUrl: string;
  readonly apiKey: string;
  readonly requests: RecordedRecallRequest[];
  readonly bots: Map<string, FakeRecallBot>;
  requestsTo(method: string, path: string): RecordedRecallRequest[];
  createdBots(): FakeRecallBot[];
  failNext(failure: FakeRecallFailure, match?: FailureMatch): void;
  setLatency(ms: number): void;
  addStatusChange(
    botId: string,
    change: {
      code: string;
      sub_code?: string | null;
      message?: string | null;
      created_at?: string;
    },
  ): void;
  updateBot(botId: string, update: (bot: FakeRecallBot) => void): void;
  /**
   * Adds a finished recording whose mixed video (media_shortcuts.video_mixed, mp4) downloads
   * from `downloadUrl` (Recall hands out pre-signed storage links there).
   */
  addRecording(botId: string, options: { downloadUrl: string; id?: string }): void;
  reset(): void;
  close(): Promise<void>;
}

function platformOf(raw: string): { platform: string; meeting_id: string; raw: string } {
  let host = "";
  try {
    host = new URL(raw).hostname;
  } catch {
    // left empty: unknown platform
  }
  const platform = host.endsWith("zoom.us")
    ? "zoom"
    : host === "meet.google.com"
      ? "google_meet"
      : host.startsWith("teams.")
        ? "microsoft_teams"
        : host.endsWith("webex.com")
          ? "webex"
          : "unknown";
  return { platform, meeting_id: raw, raw };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts the fake on 127.0.0.1 at a free port. */
export async function startFakeRecall(options: { apiKey?: string } = {}): Promise<FakeRecall> {
  const apiKey = options.apiKey ?? "test-recall-key";
  const requests: RecordedRecallRequest[] = [];
  const bots = new Map<string, FakeRecallBot>();
  const created: FakeRecallBot[] = [];
  const failures: PendingFailure[] = [];
  const idempotency = new Map<string, CachedResponse | "in_flight">();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let latencyMs = 0;

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "Content-Type": "application/json", ...headers });
    res.end(body === undefined ? "" : JSON.stringify(body));
  };

  const isFromEndpoint = (failure: FakeRecallFailure): boolean =>
    "status" in failure && failure.fromEndpoint === true;

  /** The next injected failure for this request, in front of the endpoint or from it. */
  const takeFailure = (
    method: string,
    path: string,
    where: "front" | "endpoint",
  ): FakeRecallFailure | undefined => {
    const index = failures.findIndex(
      (pending) =>
        isFromEndpoint(pending.failure) === (where === "endpoint") &&
        (pending.method === undefined || pending.method === method) &&
        (pending.path === undefined || pending.path.test(path)),
    );
    const pending = failures[index];
    if (!pending) return undefined;
    pending.remaining -= 1;
    if (pending.remaining <= 0) failures.splice(index, 1);
    return pending.failure;
  };

  const act = (method: string, path: string, body: unknown): { status: number; body: unknown } => {
    const refusal = takeFailure(method, path, "endpoint");
    if (refusal && "status" in refusal) {
      return { status: refusal.status, body: refusal.body ?? { detail: "Injected refusal" } };
    }
    if (method === "POST" && path === "/api/v1/bot/") {
      const input = (body ?? {}) as Record<string, unknown>;
      if (typeof input.meeting_url !== "string" || input.meeting_url.length === 0) {
        return { status: 400, body: { meeting_url: ["This field is required."] } };
      }
      const bot: FakeRecallBot = {
        id: randomUUID(),
        bot_name: typeof input.bot_name === "string" ? input.bot_name : "Meeting Notetaker",
        meeting_url: platformOf(input.meeting_url),
        metadata: (input.metadata as Record<string, unknown> | undefined) ?? {},
        join_at: typeof input.join_at === "string" ? input.join_at : null,
        status_changes: [
          { code: "ready", sub_code: null, message: null, created_at: new Date().toISOString() },
        ],
        recordings: [],
      };
      bots.set(bot.id, bot);
      created.push(bot);
      return { status: 201, body: bot };
    }
    const match = /^\/api\/v1\/bot\/([^/]+)\/(?:(leave_call|delete_media)\/)?$/.exec(path);
    const bot = match ? bots.get(decodeURIComponent(match[1]!)) : undefined;
    if (!match) return { status: 404, body: { detail: "Not found." } };
    if (!bot) return { status: 404, body: { detail: "Not found." } };
    const action = match[2];
    if (method === "GET" && action === undefined) return { status: 200, body: bot };
    if (method === "DELETE" && action === undefined) {
      if (isDispatched(bot)) {
        return { status: 405, body: { detail: 'Method "DELETE" not allowed.' } };
      }
      bots.delete(bot.id);
      return { status: 204, body: undefined };
    }
    if (method === "POST" && action === "leave_call") return leaveCall(bot);
    if (method === "POST" && action === "delete_media") {
      bot.recordings = [];
      return { status: 200, body: bot };
    }
    return { status: 405, body: { detail: `Method "${method}" not allowed.` } };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? "GET";
    const rawPath = (req.url ?? "/").split("?")[0]!;
    const path = rawPath.endsWith("/") ? rawPath : `${rawPath}/`;
    const text = await readBody(req);
    let body: unknown = undefined;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    requests.push({ method, path, headers, body, at: Date.now() });
    const work = () =>
      latencyMs > 0 ? new Promise((resolve) => setTimeout(resolve, latencyMs)) : Promise.resolve();

    const failure = takeFailure(method, path, "front");
    if (failure) {
      if (failSilently(failure, req, res, hanging)) return;
      send(
        res,
        failure.status,
        failure.body ?? { detail: `Injected failure (${failure.status})` },
        failure.retryAfter === undefined ? {} : { "Retry-After": failure.retryAfter },
      );
      return;
    }

    if (headers.authorization !== `Token ${apiKey}`) {
      send(res, 401, { detail: "Invalid token." });
      return;
    }

    const key = headers["idempotency-key"];
    if (key !== undefined && method !== "GET") {
      const scope = `${method} ${path} ${key}`;
      const cached = idempotency.get(scope);
      if (cached === "in_flight") {
        send(res, 409, { detail: "A request with this idempotency key is being processed." });
        return;
      }
      if (cached && Date.now() - cached.at < IDEMPOTENCY_WINDOW_MS) {
        send(res, cached.status, cached.body);
        return;
      }
      idempotency.set(scope, "in_flight");
      await work();
      const result = act(method, path, body);
      idempotency.set(scope, { ...result, at: Date.now() });
      send(res, result.status, result.body);
      return;
    }
    await work();
    const result = act(method, path, body);
    send(res, result.status, result.body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { detail: String(error) });
    });
  });
  const baseUrl = await listenLocally(server, sockets);

  return {
    baseUrl,
    apiKey,
    requests,
    bots,
    requestsTo: (method, path) => requests.filter((r) => r.method === method && r.path === path),
    createdBots: () => [...created],
    failNext(failure, match = {}) {
      failures.push({
        failure,
        remaining: match.times ?? 1,
        method: match.method,
        path: match.path,
      });
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    addStatusChange(botId, change) {
      const bot = bots.get(botId);
      if (!bot) throw new Error(`fake Recall has no bot ${botId}`);
      bot.status_changes.push({
        code: change.code,
        sub_code: change.sub_code ?? null,
        message: change.message ?? null,
        created_at: change.created_at ?? new Date().toISOString(),
      });
    },
    updateBot(botId, update) {
      const bot = bots.get(botId);
      if (!bot) throw new Error(`fake Recall has no bot ${botId}`);
      update(bot);
    },
    addRecording(botId, { downloadUrl, id }) {
      const bot = bots.get(botId);
      if (!bot) throw new Error(`fake Recall has no bot ${botId}`);
      const now = new Date().toISOString();
      bot.recordings.push({
        id: id ?? randomUUID(),
        created_at: now,
        started_at: now,
        completed_at: now,
        expires_at: null,
        status: { code: "done", sub_code: null, updated_at: now },
        media_shortcuts: {
          video_mixed: {
            id: randomUUID(),
            status: { code: "done", sub_code: null, updated_at: now },
            format: "mp4",
            data: { download_url: downloadUrl },
          },
        },
      });
    },
    reset() {
      requests.length = 0;
      bots.clear();
      created.length = 0;
      failures.length = 0;
      idempotency.clear();
      latencyMs = 0;
    },
    async close() {
      for (const res of hanging) res.destroy();
      hanging.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}
