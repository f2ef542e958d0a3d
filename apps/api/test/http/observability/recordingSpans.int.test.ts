import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { uniqueSuffix } from "@zigznote/database/testing";
import {
  authHeaderFor,
  platformAdminHeadersFor,
  type AuthenticatedCaller,
} from "../../support/auth";
import { startFakeRecall, type FakeRecall } from "../../support/fakes/recallServer";
import { startS3Server, type S3TestServer } from "../../support/fakes/s3Server";
import { createTestApp, type TestApp } from "../../support/helpers";
import { recordingDoneEvent } from "../../support/recallEvents";
import { newSvixSecret, svixHeaders } from "../../support/webhookSigning";
import { eventually, MIB } from "../../recordings/transfers";
import { startOtlpReceiver, type OtlpReceiver } from "./otlpReceiver";
import { dumpSpans, expectNoLeaks, type Secret } from "./spanLeaks";
import { callTraced, spansOfTraces, startTracedServer, type RunningServer } from "./tracedServer";

/**
 * The tracing promise on meetings, bots and recordings, as an operator runs the API (the built
 * server, spans exported over OTLP to a receiver here): a bot sent through Recall (a fake speaking
 * its API, with its API key), Recall's signed webhook saying the recording is done, the copy of
 * the media from its pre-signed link (a signature in the query string, as Recall's S3 links
 * have) into S3 (s3rver), the presigned download links and direct-upload part links the API
 * hands out, and the import retried by a job run. Every span of those traces is searched for
 * what the test made: the Recall API key, the webhook signing secret and signatures, the media
 * link's and the presigned links' signatures, the meeting link's passcode (a request body).
 */

const recallWebhookSecret = newSvixSecret();
const mediaSignature = randomBytes(24).toString("hex");
let receiver: OtlpReceiver;
let recall: FakeRecall;
let s3: S3TestServer;
let media: { url: string; downloads: () => number; failNext: () => void; server: Server };
let testApp: TestApp;
let server: RunningServer;

/** A media host like the pre-signed S3 links Recall hands out (it ignores the signature). */
async function startMediaServer(payload: Buffer): Promise<typeof media> {
  let downloads = 0;
  let failures = 0;
  const mediaServer = createServer((_req, res) => {
    downloads += 1;
    if (failures > 0) {
      failures -= 1;
      res.writeHead(503).end("try later");
      return;
    }
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": payload.length });
    res.end(payload);
  });
  await new Promise<void>((resolve) => mediaServer.listen(0, "127.0.0.1", resolve));
  const { port } = mediaServer.address() as AddressInfo;
  const query = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=${mediaSignature}`;
  return {
    url: `http://127.0.0.1:${port}/media/video_mixed.mp4?${query}`,
    downloads: () => downloads,
    failNext: () => (failures += 1),
    server: mediaServer,
  };
}

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  recall = await startFakeRecall({ apiKey: `recall-${randomBytes(16).toString("hex")}` });
  s3 = await startS3Server();
  media = await startMediaServer(randomBytes(MIB));
  testApp = createTestApp();
  server = await startTracedServer({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    RECALL_API_KEY: recall.apiKey,
    RECALL_API_BASE_URL: recall.baseUrl,
    RECALL_MAX_RETRIES: "0",
    RECALL_WEBHOOK_SECRET: recallWebhookSecret,
    ...s3.env(`spans-${uniqueSuffix()}/`),
  });
}, 90_000);
afterAll(async () => {
  dumpSpans(receiver.spans);
  expect(await server.stop()).toBe(0);
  await receiver.close();
  await recall.close();
  await s3.close();
  await new Promise((resolve) => media.server.close(resolve));
  await testApp.close();
});

const call = (path: string, init?: Parameters<typeof callTraced>[2]) =>
  callTraced(server, path, init);

/** Every `X-Amz-Signature` value in `text` (presigned links in an answer). */
function signaturesIn(text: string, label: string): Secret[] {
  return [...text.matchAll(/X-Amz-Signature=([0-9a-f]+)/g)].map((match) => ({
    label,
    value: match[1]!,
  }));
}

describe("recording flows under tracing", () => {
  let caller: AuthenticatedCaller;
  let meetingId: string;
  const passcode = randomBytes(10).toString("hex");
  const title = `Board meeting ${randomBytes(8).toString("hex")}`;
  const idempotencyKey = `meeting-${randomBytes(12).toString("hex")}`;

  beforeAll(async () => {
    caller = await authHeaderFor(testApp);
  });

  it("keeps Recall's key, its webhook's secret and signatures and the media link's signature out of a recording's import", async () => {
    // A keyed create: its claim and answer go as statement batches (BEGIN with the claim, the
    // answer with COMMIT), the answer's body a parameter; the replay reads it back.
    const meetingUrl = `https://zoom.us/j/${String(Date.now()).slice(-11)}?pwd=${passcode}`;
    const create = () =>
      call("/api/v1/meetings", {
        method: "POST",
        headers: {
          ...caller.headers,
          "content-type": "application/json",
          "idempotency-key": idempotencyKey,
        },
        body: JSON.stringify({ title, meetingUrl }),
      });
    const meeting = await create();
    expect(meeting.response.status).toBe(201);
    meetingId = ((await meeting.response.json()) as { id: string }).id;
    const replay = await create();
    expect(replay.response.headers.get("idempotent-replayed")).toBe("true");
    const bot = await call(`/api/v1/meetings/${meetingId}/bot`, {
      method: "POST",
      headers: caller.headers,
    });
    expect(bot.response.status).toBe(201);
    const botId = ((await bot.response.json()) as { id: string }).id;
    const recallBot = recall.createdBots().find((candidate) => candidate.metadata.botId === botId)!;
    recall.addRecording(recallBot.id, { downloadUrl: media.url });

    // Recall says the recording is done; the first download fails (the copy is retried by the
    // job), the second copies it into the bucket.
    media.failNext();
    const body = recordingDoneEvent({
      recallBotId: recallBot.id,
      recordingId: `rec_${uniqueSuffix()}`,
      at: new Date(),
      metadata: recallBot.metadata,
    });
    const headers = svixHeaders(recallWebhookSecret, `msg_${uniqueSuffix()}`, body);
    const done = await call("/webhooks/recall", { method: "POST", headers, body });
    expect(done.response.status).toBe(200);
    // The failure recorded, the retry is made due now rather than after its back-off.
    const db = testApp.ctx.db;
    await eventually(async () => {
      const row = await db.recordingImport.findFirst({ where: { meetingId } });
      return row?.status === "pending" && row.attempts === 1 && row.lastError !== null;
    });
    await db.recordingImport.updateMany({
      where: { meetingId },
      data: { nextAttemptAt: new Date() },
    });
    const retry = await call("/api/v1/admin/jobs/retryRecordingImports/run", {
      method: "POST",
      headers: { ...platformAdminHeadersFor(caller), "content-type": "application/json" },
      body: JSON.stringify({ reason: "spans test" }),
    });
    expect(retry.response.status).toBe(200);
    await eventually(async () => (await s3.objectKeys()).length > 0);

    const spans = await spansOfTraces(
      receiver,
      [meeting, replay, bot, done, retry].map((trace) => trace.traceId),
      1_000,
    );
    const statements = spans.map((span) => String(span.attributes["db.query.text"]));
    expect(statements.some((text) => text.startsWith("BEGIN; CALL idempotency_claim"))).toBe(true);
    // The download is a client span of fetch's instrumentation, its query string cut off.
    const downloads = spans.filter((span) =>
      String(span.attributes["url.full"]).includes("/media/video_mixed.mp4"),
    );
    expect(downloads.length).toBeGreaterThanOrEqual(2);
    expect(spans.some((span) => span.name === "job retryRecordingImports")).toBe(true);
    expectNoLeaks(spans, [
      { label: "Recall's API key", value: recall.apiKey },
      { label: "Recall's webhook signing secret", value: recallWebhookSecret.slice(6) },
      {
        label: "the svix-signature",
        value: headers["svix-signature"]!.replace(/^v1,/, ""),
      },
      { label: "the media link's signature", value: mediaSignature },
      { label: "the meeting link's passcode (a request body)", value: passcode },
      { label: "the meeting's title (a request body)", value: title },
      { label: "the Idempotency-Key", value: idempotencyKey },
      { label: "a Clerk session token", value: caller.token },
    ]);
  });

  it("keeps a meeting link's passcode out of a refused bot's spans when Recall's answer quotes the link", async () => {
    const secretCode = randomBytes(10).toString("hex");
    const meetingUrl = `https://zoom.us/j/${String(Date.now() + 3).slice(-11)}?pwd=${secretCode}`;
    const meeting = await call("/api/v1/meetings", {
      method: "POST",
      headers: { ...caller.headers, "content-type": "application/json" },
      body: JSON.stringify({ title: "Refused", meetingUrl }),
    });
    expect(meeting.response.status).toBe(201);
    const { id } = (await meeting.response.json()) as { id: string };
    // A provider's refusal that quotes what it was sent: the error message the span records.
    recall.failNext(
      { status: 400, body: { meeting_url: [`Could not join ${meetingUrl}: meeting not found`] } },
      { method: "POST", path: /^\/api\/v1\/bot\/$/ },
    );
    const bot = await call(`/api/v1/meetings/${id}/bot`, {
      method: "POST",
      headers: caller.headers,
    });
    expect(bot.response.status).toBeGreaterThanOrEqual(400);
    const spans = await spansOfTraces(receiver, [bot.traceId]);
    const refused = spans.find((span) => span.name === "recall create a bot")!;
    expect(refused.status.code).toBe(2);
    // What Recall said stays readable, the link without its query.
    expect(refused.status.message).toContain("Could not join https://zoom.us/j/");
    expectNoLeaks(spans, [{ label: "the meeting link's passcode", value: secretCode }]);
  });

  it("keeps the presigned links' signatures out of uploads, downloads and direct uploads", async () => {
    const recording = `/api/v1/meetings/${meetingId}/recording`;
    // Streamed into a multipart upload, replacing the imported recording.
    const put = await call(recording, {
      method: "PUT",
      headers: { ...caller.headers, "content-type": "video/mp4" },
      body: randomBytes(MIB).toString("base64"),
    });
    expect(put.response.status).toBe(200);
    const link = await call(`${recording}?redirect=false`, { headers: caller.headers });
    expect(link.response.status).toBe(200);
    const linkText = await link.response.text();
    const redirect = await fetch(`${server.url}${recording}`, {
      headers: caller.headers,
      redirect: "manual",
    });
    expect(redirect.status).toBe(302);
    const upload = await call(`${recording}/uploads`, {
      method: "POST",
      headers: { ...caller.headers, "content-type": "application/json" },
      body: JSON.stringify({ contentType: "audio/mpeg", sizeBytes: MIB }),
    });
    expect(upload.response.status).toBe(201);
    const uploadText = await upload.response.text();
    const { id, parts } = JSON.parse(uploadText) as {
      id: string;
      parts: { url: string; headers: Record<string, string> }[];
    };
    for (const part of parts) {
      const sent = await fetch(part.url, {
        method: "PUT",
        headers: part.headers,
        body: randomBytes(MIB),
      });
      expect(sent.status).toBe(200);
    }
    const completed = await call(`${recording}/uploads/${id}/complete`, {
      method: "POST",
      headers: caller.headers,
    });
    expect(completed.response.status).toBe(200);

    const spans = await spansOfTraces(
      receiver,
      [put, link, upload, completed].map((trace) => trace.traceId),
    );
    // The S3 calls are client spans of the http instrumentation (the AWS SDK's handler).
    expect(spans.some((span) => String(span.attributes["url.full"]).startsWith(s3.endpoint))).toBe(
      true,
    );
    const secrets = [
      ...signaturesIn(linkText, "a presigned download link's signature"),
      ...signaturesIn(redirect.headers.get("location")!, "the redirect's presigned signature"),
      ...signaturesIn(uploadText, "a presigned part link's signature"),
      { label: "a Clerk session token", value: caller.token },
    ];
    expect(secrets.length).toBeGreaterThan(3);
    expectNoLeaks(spans, secrets);
  });
});
