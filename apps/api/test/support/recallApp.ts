import { randomBytes } from "node:crypto";
import type { Server } from "node:http";
import request from "supertest";
import { RecallClient, type RecallClientOptions } from "../../src/bots/recallClient";
import { authHeaderFor, type AuthenticatedCaller } from "./auth";
import { startFakeRecall, type FakeRecall } from "./fakes/recallServer";
import { createTestApp, type TestApp, type TestContextOptions } from "./helpers";
import { closeServer, listen } from "./recallEvents";

/** The environment that points an app's Recall client at the fake. */
export function fakeRecallEnv(recall: FakeRecall): Record<string, string> {
  return { RECALL_API_BASE_URL: recall.baseUrl, RECALL_API_KEY: recall.apiKey };
}

/** A Recall client of the fake, for calling it directly or handing it to a job. */
export function fakeRecallClient(
  recall: FakeRecall,
  options: Omit<RecallClientOptions, "baseUrl" | "apiKey">,
): RecallClient {
  return new RecallClient({ baseUrl: recall.baseUrl, apiKey: recall.apiKey, ...options });
}

export interface RecallTestApp {
  recall: FakeRecall;
  testApp: TestApp;
  /** The app listening on 127.0.0.1 (one server for many concurrent requests). */
  server: Server;
  /** Stops the server, the fake and the app. */
  close(): Promise<void>;
}

/**
 * A real app (`createTestApp`) whose Recall is a fresh fake, listening on a free port. `env`
 * adds to (or overrides) the Recall settings, e.g. RECALL_WEBHOOK_SECRET or retry timings.
 */
export async function startRecallTestApp(options: TestContextOptions = {}): Promise<RecallTestApp> {
  const recall = await startFakeRecall();
  const testApp = createTestApp({ ...options, env: { ...fakeRecallEnv(recall), ...options.env } });
  const { server } = await listen(testApp.app);
  return {
    recall,
    testApp,
    server,
    async close() {
      await closeServer(server);
      await recall.close();
      await testApp.close();
    },
  };
}

/** A meeting with a bot sent through the API, and the bot the fake Recall made for it. */
export interface MeetingWithBot {
  caller: AuthenticatedCaller;
  meetingId: string;
  botId: string;
  recallBotId: string;
  /** The metadata the API gave Recall's bot (its events carry it back). */
  metadata: Record<string, unknown>;
}

/** Creates a meeting (for `caller`, else a new organization's admin) and sends its bot. */
export async function meetingWithBot(
  fixture: Pick<RecallTestApp, "recall" | "testApp" | "server">,
  caller?: AuthenticatedCaller,
): Promise<MeetingWithBot> {
  const who = caller ?? (await authHeaderFor(fixture.testApp));
  const letters = Array.from(randomBytes(3), (byte) => String.fromCharCode(97 + (byte % 26)));
  const meeting = await request(fixture.server)
    .post("/api/v1/meetings")
    .set(who.headers)
    .send({ title: "Weekly", meetingUrl: `https://meet.google.com/${letters.join("")}-qrst-uvw` });
  expect(meeting.status).toBe(201);
  const bot = await request(fixture.server)
    .post(`/api/v1/meetings/${meeting.body.id}/bot`)
    .set(who.headers);
  expect(bot.status).toBe(201);
  const recallBot = fixture.recall.createdBots().find((b) => b.metadata.botId === bot.body.id)!;
  return {
    caller: who,
    meetingId: meeting.body.id,
    botId: bot.body.id,
    recallBotId: recallBot.id,
    metadata: recallBot.metadata,
  };
}
