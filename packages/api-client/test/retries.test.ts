/**
 * The typed client's retries against the real API: the app of apps/api (its build), on a
 * PostgreSQL database of its own (`<TEST_DATABASE_URL>_client`) and real Redis, with the local
 * Recall fake of apps/api's tests. Answers are lost on the way back by a TCP proxy in this
 * process (the write happened, the client saw a network error), Recall is made slow or failing,
 * and request budgets are spent for real.
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { createApp } from "@zigznote/api/dist/app.js";
import { loadConfig } from "@zigznote/api/dist/config.js";
import { buildContext, type AppContext } from "@zigznote/api/dist/context.js";
import { createApiKey } from "@zigznote/api/dist/identity/index.js";
import { createPrismaClient, type PrismaClient } from "@zigznote/database";
import { createMeeting, createOrganization, prepareTestDatabase } from "@zigznote/database/testing";
import { Redis } from "ioredis";
import {
  startFakeRecall,
  type FakeRecall,
} from "../../../apps/api/test/support/fakes/recallServer";
import { createApiClient, type ApiClient } from "../src/index";

const databaseUrl = (() => {
  const url = new URL(
    process.env.TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/zigznote_test",
  );
  url.pathname = `${url.pathname}_client`;
  return url.toString();
})();
const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const keyPrefix = `test-client-${process.pid}-${Date.now()}`;

/**
 * A TCP proxy to the API that can lose answers: the request reaches the API whole, and the
 * connection is cut when the answer's first bytes come back.
 */
interface LossyProxy {
  url: string;
  loseNextAnswers(count: number): void;
  close(): Promise<void>;
}

async function startLossyProxy(port: number): Promise<LossyProxy> {
  let toLose = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => sockets.delete(socket));
    }
    client.pipe(upstream);
    upstream.on("data", (chunk: Buffer) => {
      if (toLose > 0) {
        toLose -= 1;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    loseNextAnswers(count) {
      toLose = count;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let db: PrismaClient;
let redis: Redis;
let recall: FakeRecall;
let ctx: AppContext;
let server: Server;
let proxy: LossyProxy;
let organizationId: string;
let apiKey: string;
/** Every request the client sent, as the API-facing fetch saw it. */
let sent: Request[];

function client(options: Parameters<typeof createApiClient>[0] = {}): ApiClient {
  return createApiClient({
    baseUrl: proxy.url,
    headers: { Authorization: `Bearer ${apiKey}` },
    fetch: (request) => {
      sent.push(request);
      return fetch(request);
    },
    ...options,
    retry: options.retry === false ? false : { minDelayMs: 10, maxDelayMs: 50, ...options.retry },
  });
}

before(async () => {
  await prepareTestDatabase(databaseUrl);
  db = createPrismaClient(databaseUrl, { maxConnections: 10 });
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  recall = await startFakeRecall();
  const config = loadConfig({
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    DATABASE_URL: databaseUrl,
    JOBS_ENABLED: "false",
    REDIS_KEY_PREFIX: keyPrefix,
    RATE_LIMIT_PER_MINUTE_FREE: "20",
    RECALL_API_BASE_URL: recall.baseUrl,
    RECALL_API_KEY: recall.apiKey,
    RECALL_MAX_RETRIES: "0",
  });
  ctx = buildContext({ config, db, redis });
  server = await new Promise<Server>((resolve) => {
    const listening = createApp(ctx).listen(0, "127.0.0.1", () => resolve(listening));
  });
  proxy = await startLossyProxy((server.address() as AddressInfo).port);
});
after(async () => {
  await proxy.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await recall.close();
  await redis.quit();
  await db.$disconnect();
});
beforeEach(async () => {
  sent = [];
  recall.reset();
  recall.setLatency(0);
  // Each test acts for an organization of its own, with its own budget.
  organizationId = (await createOrganization(db)).id;
  apiKey = (
    await createApiKey(
      { db },
      {
        organizationId,
        name: "client test",
        scopes: ["meetings:read", "meetings:write", "bots:read", "bots:write"],
      },
    )
  ).plainKey;
});

const meetingBody = () => ({
  title: `Sync ${Math.random()}`,
  meetingUrl: `https://zoom.us/j/${String(Date.now()).slice(-8)}${Math.floor(Math.random() * 900 + 100)}`,
});

void describe("createApiClient retries against the real API", () => {
  void it("gives every write an Idempotency-Key, the same on each retry; reads get none", async () => {
    const api = client();
    const created = await api.POST("/api/v1/meetings", { body: meetingBody() });
    assert.equal(created.response.status, 201);
    await api.GET("/api/v1/meetings");
    const [write, read] = sent;
    assert.match(write!.headers.get("idempotency-key") ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(read!.headers.get("idempotency-key"), null);
  });

  void it("retries a write whose answer was lost, and gets the first answer: one meeting", async () => {
    const api = client();
    const body = meetingBody();
    proxy.loseNextAnswers(1);
    const created = await api.POST("/api/v1/meetings", { body });
    assert.equal(created.response.status, 201);
    assert.equal(created.response.headers.get("idempotent-replayed"), "true");
    assert.equal(sent.length, 2);
    assert.equal(sent[0]!.headers.get("idempotency-key"), sent[1]!.headers.get("idempotency-key"));
    assert.equal(await db.meeting.count({ where: { organizationId, title: body.title } }), 1);
    assert.equal(
      created.data?.id,
      (await db.meeting.findFirstOrThrow({ where: { title: body.title } })).id,
    );
  });

  void it("retries a read after a network error", async () => {
    const api = client();
    proxy.loseNextAnswers(2);
    const listed = await api.GET("/api/v1/meetings");
    assert.equal(listed.response.status, 200);
    assert.equal(sent.length, 3);
  });

  void it("retries a 5xx: the API stored nothing, so the retry creates the bot", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.failNext({ status: 400, body: { detail: "Recall refuses once" } });
    const api = client();
    const bot = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(bot.response.status, 201);
    assert.equal(bot.response.headers.get("idempotent-replayed"), null);
    assert.equal(sent.length, 2);
    assert.equal(recall.createdBots().length, 1);
  });

  void it("waits out 409 IDEMPOTENCY_KEY_IN_USE (Retry-After) and gets the running request's answer", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.setLatency(1_500);
    const key = `bot-${meeting.id}`;
    const delays: number[] = [];
    const first = client().POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id }, header: { "Idempotency-Key": key } },
      body: {},
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const second = await client({
      retry: {
        sleep: (ms) => {
          delays.push(ms);
          return new Promise((resolve) => setTimeout(resolve, ms));
        },
      },
    }).POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id }, header: { "Idempotency-Key": key } },
      body: {},
    });
    const done = await first;
    assert.equal(done.response.status, 201);
    assert.equal(second.response.status, 201);
    assert.equal(second.response.headers.get("idempotent-replayed"), "true");
    assert.deepEqual(second.data, done.data);
    assert.ok(delays.length >= 1);
    assert.ok(
      delays.every((ms) => ms === 1_000),
      `waited ${delays.join(", ")} ms`,
    );
    assert.equal(recall.requestsTo("POST", "/api/v1/bot/").length, 1);
  });

  void it("waits Retry-After on 429 RATE_LIMITED, then succeeds once the budget resets", async () => {
    const delays: number[] = [];
    const api = client({
      retry: {
        sleep: async (ms) => {
          delays.push(ms);
          // The window ends: the organization's counter is gone.
          await redis.del(`${keyPrefix}:ratelimit:organization:${organizationId}`);
        },
      },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await api.GET("/api/v1/me")).response.status);
    assert.ok(statuses.every((status) => status === 200));
    const spent = await api.GET("/api/v1/me");
    assert.equal(spent.response.status, 200);
    assert.equal(delays.length, 1);
    assert.equal(sent.length, 22);
    assert.ok(delays[0]! >= 1_000 && delays[0]! <= 60_000, `waited ${delays[0]} ms`);
    assert.equal(delays[0]! % 1_000, 0);
  });

  void it("gives up after the configured retries and returns the last answer", async () => {
    const meeting = await createMeeting(db, { organizationId });
    recall.failNext({ status: 400 }, { times: 10 });
    const api = client({ retry: { retries: 2 } });
    const bot = await api.POST("/api/v1/meetings/{id}/bot", {
      params: { path: { id: meeting.id } },
      body: {},
    });
    assert.equal(bot.response.status, 502);
    assert.equal(bot.error?.error.code, "RECALL_REJECTED");
    assert.equal(sent.length, 3);
  });

  void it("does not retry other 4xx, nor anything with retry: false", async () => {
    const api = client();
    const missing = await api.GET("/api/v1/meetings/{id}", {
      params: { path: { id: "8b7e4c1a-6f0e-4d6b-9d33-1f6c1c0e2a10" } },
    });
    assert.equal(missing.response.status, 404);
    assert.equal(sent.length, 1);
    sent = [];
    const once = client({ retry: false });
    proxy.loseNextAnswers(1);
    await assert.rejects(once.GET("/api/v1/meetings"));
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.headers.get("idempotency-key"), null);
  });
});
