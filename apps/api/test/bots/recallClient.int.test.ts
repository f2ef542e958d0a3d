import { BadGatewayError } from "@zigznote/shared";
import {
  parseRetryAfter,
  RecallClient,
  type RecallClientOptions,
} from "../../src/bots/recallClient";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";

let recall: FakeRecall;
beforeAll(async () => {
  recall = await startFakeRecall();
});
afterAll(() => recall.close());
beforeEach(() => recall.reset());

function client(overrides: Partial<RecallClientOptions> = {}): {
  client: RecallClient;
  waits: number[];
} {
  const waits: number[] = [];
  return {
    waits,
    client: new RecallClient({
      baseUrl: `${recall.baseUrl}/`,
      apiKey: recall.apiKey,
      // Generous by default (a loaded machine must not cause retries); the timeout tests lower it.
      timeoutMs: 5_000,
      maxRetries: 3,
      retryBaseMs: 10,
      retryMaxMs: 5_000,
      // Records the waits instead of sleeping: the policy is asserted, not the clock.
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
      ...overrides,
    }),
  };
}

const input = {
  meetingUrl: "https://meet.google.com/abc-defg-hij",
  botName: "zigznote",
  metadata: { meetingId: "m-1", organizationId: "o-1", botId: "b-1" },
  idempotencyKey: "b-1",
};

async function rejection(
  promise: Promise<unknown>,
): Promise<BadGatewayError & { recallStatus: number | null }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BadGatewayError)
      return error as BadGatewayError & { recallStatus: number | null };
    throw error;
  }
  throw new Error("expected a rejection");
}

describe("RecallClient", () => {
  it("creates a bot with Recall's request shape, token auth and an idempotency key", async () => {
    const { client: recallClient } = client();
    const bot = await recallClient.createBot(input);
    expect(bot.id).toBe(recall.createdBots()[0]!.id);
    expect(bot.status_changes[0]).toMatchObject({ code: "ready" });
    const [request] = recall.requestsTo("POST", "/api/v1/bot/");
    expect(request!.headers.authorization).toBe(`Token ${recall.apiKey}`);
    expect(request!.headers["idempotency-key"]).toBe("b-1");
    expect(request!.headers["content-type"]).toBe("application/json");
    expect(request!.body).toEqual({
      meeting_url: input.meetingUrl,
      bot_name: "zigznote",
      metadata: { meetingId: "m-1", organizationId: "o-1", botId: "b-1" },
    });
  });

  it("reads a bot, makes it leave and deletes its media", async () => {
    const { client: recallClient } = client();
    const bot = await recallClient.createBot(input);
    recall.addStatusChange(bot.id, { code: "in_call_recording" });
    expect((await recallClient.getBot(bot.id)).status_changes.map((c) => c.code)).toEqual([
      "ready",
      "in_call_recording",
    ]);
    await recallClient.leaveCall(bot.id);
    await recallClient.deleteMedia(bot.id);
    expect(recall.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "POST /api/v1/bot/",
      `GET /api/v1/bot/${bot.id}/`,
      `POST /api/v1/bot/${bot.id}/leave_call/`,
      `POST /api/v1/bot/${bot.id}/delete_media/`,
    ]);
    expect(recall.bots.get(bot.id)!.status_changes.at(-1)!.code).toBe("call_ended");
  });

  it("deletes a scheduled bot before dispatch only: 405 once dispatched, 404 once deleted", async () => {
    const { client: recallClient } = client();
    const dispatched = await recallClient.createBot(input);
    const refused = await rejection(recallClient.deleteBot(dispatched.id));
    expect(refused.code).toBe("RECALL_REJECTED");
    expect(refused.recallStatus).toBe(405);
    expect(recall.bots.has(dispatched.id)).toBe(true);

    const scheduled = await recallClient.createBot({ ...input, idempotencyKey: "b-2" });
    recall.updateBot(scheduled.id, (bot) => {
      bot.join_at = new Date(Date.now() + 60 * 60 * 1000).toISOString();
    });
    await recallClient.deleteBot(scheduled.id);
    expect(recall.bots.has(scheduled.id)).toBe(false);
    const [request] = recall.requestsTo("DELETE", `/api/v1/bot/${scheduled.id}/`);
    expect(request!.headers.authorization).toBe(`Token ${recall.apiKey}`);
    expect((await rejection(recallClient.deleteBot(scheduled.id))).code).toBe("RECALL_NOT_FOUND");
  });

  it("retries 429 after Retry-After and succeeds", async () => {
    const { client: recallClient, waits } = client();
    recall.failNext({ status: 429, retryAfter: "1" }, { times: 2 });
    const bot = await recallClient.createBot(input);
    expect(bot.id).toBeDefined();
    expect(waits).toEqual([1000, 1000]);
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(3);
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("fails fast with RECALL_RATE_LIMITED when Retry-After exceeds the longest wait", async () => {
    const { client: recallClient, waits } = client({ retryMaxMs: 2_000 });
    recall.failNext({ status: 507, retryAfter: "30" });
    const error = await rejection(recallClient.createBot(input));
    expect(error).toMatchObject({ status: 502, code: "RECALL_RATE_LIMITED" });
    expect(error.details).toMatchObject({ retryAfterSeconds: 30 });
    expect(waits).toEqual([]);
  });

  it.each([502, 503, 504, 507])("retries %i with capped exponential backoff", async (status) => {
    const { client: recallClient, waits } = client({ retryBaseMs: 100, retryMaxMs: 250 });
    recall.failNext({ status }, { times: 3 });
    await recallClient.createBot(input);
    expect(waits).toHaveLength(3);
    // attempt n waits within [cap/2, cap] where cap = min(250, 100 * 2^n)
    expect(waits[0]).toBeGreaterThanOrEqual(50);
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(waits[1]).toBeGreaterThanOrEqual(100);
    expect(waits[1]).toBeLessThanOrEqual(200);
    expect(waits[2]).toBeGreaterThanOrEqual(125);
    expect(waits[2]).toBeLessThanOrEqual(250);
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("gives up after the configured retries with RECALL_UNAVAILABLE", async () => {
    const { client: recallClient } = client({ maxRetries: 2 });
    recall.failNext({ status: 503 }, { times: 10 });
    const error = await rejection(recallClient.createBot(input));
    expect(error).toMatchObject({ status: 502, code: "RECALL_UNAVAILABLE" });
    expect(error.message).toMatch(/after 3 attempts \(HTTP 503/);
    expect(recall.requests).toHaveLength(3);
  });

  it("retries a timeout with the same idempotency key: one bot results", async () => {
    const { client: recallClient } = client({ timeoutMs: 200 });
    recall.failNext({ hang: true });
    const bot = await recallClient.createBot(input);
    const creates = recall.requestsTo("POST", "/api/v1/bot/");
    expect(creates).toHaveLength(2);
    expect(new Set(creates.map((r) => r.headers["idempotency-key"]))).toEqual(new Set(["b-1"]));
    expect(recall.createdBots().map((b) => b.id)).toEqual([bot.id]);
  });

  it("turns repeated timeouts and network errors into RECALL_UNAVAILABLE", async () => {
    // Long enough that the reset of the second attempt arrives within it on a loaded machine
    // (with 100 ms, CI once saw that attempt time out before the fake could reset it).
    const { client: recallClient } = client({ timeoutMs: 1_000, maxRetries: 1 });
    recall.failNext({ hang: true });
    recall.failNext({ reset: true });
    const error = await rejection(recallClient.createBot(input));
    expect(error).toMatchObject({ code: "RECALL_UNAVAILABLE" });
    expect(error.message).toMatch(/network error/);
    expect(recall.requests).toHaveLength(2);
  });

  it("does not retry a 500 or a 4xx, and says what Recall said", async () => {
    const { client: recallClient } = client();
    recall.failNext({ status: 500, body: { detail: "boom" } });
    expect(await rejection(recallClient.createBot(input))).toMatchObject({
      code: "RECALL_UNAVAILABLE",
      recallStatus: 500,
    });
    recall.failNext({ status: 400, body: { detail: "Invalid meeting URL" } });
    const rejected = await rejection(recallClient.createBot({ ...input, idempotencyKey: "other" }));
    expect(rejected).toMatchObject({ code: "RECALL_REJECTED", recallStatus: 400 });
    expect(rejected.message).toContain("Invalid meeting URL");
    expect(recall.requests).toHaveLength(2);
  });

  it("maps an unknown bot to RECALL_NOT_FOUND and a bad key to RECALL_REJECTED (401)", async () => {
    expect(await rejection(client().client.getBot("nope"))).toMatchObject({
      code: "RECALL_NOT_FOUND",
    });
    expect(await rejection(client({ apiKey: "wrong" }).client.createBot(input))).toMatchObject({
      code: "RECALL_REJECTED",
      recallStatus: 401,
    });
  });

  it("refuses without an API key and sends nothing", async () => {
    await expect(client({ apiKey: undefined }).client.createBot(input)).rejects.toMatchObject({
      status: 503,
      code: "PROVIDER_NOT_CONFIGURED",
      details: { provider: "recall", variables: ["RECALL_API_KEY"] },
    });
    expect(recall.requests).toHaveLength(0);
  });

  it("is answered from the idempotency cache on a repeated key, like Recall", async () => {
    const { client: recallClient } = client();
    const first = await recallClient.createBot(input);
    const second = await recallClient.createBot(input);
    expect(second.id).toBe(first.id);
    expect(recall.createdBots()).toHaveLength(1);
  });

  it("gives each leave and media deletion its own key, so a refusal is not replayed to the next", async () => {
    const { client: recallClient } = client();
    const bot = await recallClient.createBot(input);
    recall.addRecording(bot.id, { downloadUrl: "http://127.0.0.1/media.mp4" });
    // Recall refuses the first of each (the bot is not in the call yet, is still recording);
    // its idempotency cache keeps a refusal for an hour like any answer.
    for (const action of ["leave_call", "delete_media"]) {
      recall.failNext(
        { status: 400, body: { detail: `cannot ${action} now` }, fromEndpoint: true },
        { path: new RegExp(`/${action}/$`) },
      );
    }
    expect(await rejection(recallClient.leaveCall(bot.id))).toMatchObject({
      code: "RECALL_REJECTED",
      recallStatus: 400,
    });
    expect(await rejection(recallClient.deleteMedia(bot.id))).toMatchObject({
      code: "RECALL_REJECTED",
      recallStatus: 400,
    });

    // Later attempts (the stuck-bot job, a deletion) reach Recall instead of its cached refusal.
    await recallClient.leaveCall(bot.id);
    await recallClient.deleteMedia(bot.id);
    expect(recall.bots.get(bot.id)!.status_changes.at(-1)!.code).toBe("call_ended");
    expect(recall.bots.get(bot.id)!.recordings).toEqual([]);
    for (const action of ["leave_call", "delete_media"]) {
      const keys = recall
        .requestsTo("POST", `/api/v1/bot/${bot.id}/${action}/`)
        .map((r) => r.headers["idempotency-key"]);
      expect(keys).toHaveLength(2);
      expect(new Set(keys).size).toBe(2);
    }
  });

  it("retries one leave under one key (network error, 5xx, 429, 409 in progress)", async () => {
    const { client: recallClient } = client({ maxRetries: 4 });
    const bot = await recallClient.createBot(input);
    const match = { path: /\/leave_call\/$/ };
    recall.failNext({ reset: true }, match);
    recall.failNext({ status: 503 }, match);
    recall.failNext({ status: 429, retryAfter: "0" }, match);
    recall.failNext({ status: 409 }, match);
    await recallClient.leaveCall(bot.id);
    const keys = recall
      .requestsTo("POST", `/api/v1/bot/${bot.id}/leave_call/`)
      .map((r) => r.headers["idempotency-key"]);
    expect(keys).toHaveLength(5);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(new RegExp(`^leave_call:${bot.id}:`));
  });

  it("parses Retry-After seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(
      parseRetryAfter("Wed, 21 Oct 2015 07:28:10 GMT", Date.parse("Wed, 21 Oct 2015 07:28:00 GMT")),
    ).toBe(10_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});
