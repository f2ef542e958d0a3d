import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { createBot, createMeeting, createStorageObject } from "@zigznote/database/testing";
import request from "supertest";
import { appOpenApiDocument } from "../../src/app";
import { authHeaderFor, createApiKey, platformAdminHeadersFor } from "../support/auth";
import type { FakeRecall } from "../support/fakes/recallServer";
import { createTestApp } from "../support/helpers";
import { startRecallTestApp, type RecallTestApp } from "../support/recallApp";

/**
 * Every operation of the document, asked by an organization admin who is also a platform admin
 * (so that every guard lets the request through to its handler), about the organization's own
 * resources in each state a handler tells apart: a meeting that never had a bot, one whose bot
 * ended, one whose bot is in the call or still being created, one with a recording, a deleted
 * one, an API key, the organization itself, and an id of nothing. Writes get a plausible body
 * (PLAUSIBLE_BODIES) so that they pass validation and reach their refusals.
 *
 * openApiProbe.int.test.ts asks what careless clients send (no credentials, bad ids, bad
 * bodies); this file reaches the refusals handlers find in stored state. Each answer is checked
 * against the document (test/support/setupOpenApi.ts): a handler answering a code its route does not
 * declare fails here even when no feature test asks it (it found DELETE .../bot answering
 * BOT_NOT_FOUND for a meeting that never had a bot).
 */

/** A body that passes each write's schema, by operationId. */
const PLAUSIBLE_BODIES: Record<string, unknown> = {
  createApiKey: { name: "probe", scopes: ["meetings:read"] },
  addMember: { userId: "user_probe", role: "member" },
  createRecordingUpload: { contentType: "video/mp4", sizeBytes: 1024 },
  createMeeting: { title: "Probe", meetingUrl: "https://zoom.us/j/85012345678" },
  updateMeeting: { title: "Probe (renamed)", meetingUrl: "https://meet.google.com/abc-defg-hij" },
  createBot: {},
  changePlan: { planSlug: "pro" },
  createCheckoutSession: { planSlug: "pro" },
  createPortalSession: { flow: "payment_method_update" },
  cancelSubscription: {},
  extendViolationGrace: {
    reason: "probe",
    expectedVersion: 0,
    graceEndsAt: "2099-01-01T00:00:00Z",
  },
  waiveViolation: { reason: "probe", expectedVersion: 0, until: "2099-01-01T00:00:00Z" },
  recheckOrganizationViolations: { reason: "probe" },
  resendNotice: { reason: "probe" },
  liftSuspension: { reason: "probe", expectedVersion: 0, days: 7 },
  runJobNow: { reason: "probe" },
};

let fixture: RecallTestApp;
let recall: FakeRecall;
let server: Server;
let headers: { Authorization: string };
let organizationId: string;

/**
 * The resources, made anew for each operation: a write of one operation (a bot sent to the
 * meeting that had none) must not change the state another is asked about.
 */
async function makeStates(): Promise<Map<string, string>> {
  const { testApp } = fixture;
  const db = testApp.ctx.db;
  const states = new Map<string, string>();
  const meeting = () => createMeeting(db, { organizationId });
  states.set("a meeting that never had a bot", (await meeting()).id);
  const ended = await meeting();
  await createBot(db, ended, { status: "call_ended" });
  states.set("a meeting whose bot ended", ended.id);
  const inCall = await meeting();
  await createBot(db, inCall, { status: "in_call_recording" });
  states.set("a meeting whose bot is in the call", inCall.id);
  const pending = await meeting();
  await createBot(db, pending, { status: "pending", recallBotId: null });
  states.set("a meeting whose bot is being created", pending.id);
  const recorded = await meeting();
  await createStorageObject(db, recorded);
  states.set("a meeting with a recording (its file missing)", recorded.id);
  states.set(
    "a deleted meeting",
    (await createMeeting(db, { organizationId, deletedAt: new Date() })).id,
  );
  await createApiKey(testApp, { organizationId, scopes: ["meetings:read"] });
  const key = await db.apiKey.findFirstOrThrow({
    where: { organizationId },
    orderBy: { createdAt: "desc" },
  });
  states.set("an API key", key.id);
  states.set("the organization", organizationId);
  states.set("nothing", randomUUID());
  return states;
}

// The operations are read from a context of their own: the test names are made before the
// fixture starts.
const declaringApp = createTestApp();
const declaring = appOpenApiDocument(declaringApp.ctx.routes);
afterAll(() => declaringApp.close());

beforeAll(async () => {
  fixture = await startRecallTestApp();
  ({ recall, server } = fixture);
  const caller = await authHeaderFor(fixture.testApp, { role: "admin" });
  headers = platformAdminHeadersFor(caller);
  organizationId = caller.organizationId;
});
afterAll(async () => {
  await fixture.testApp.ctx.notices.idle();
  await fixture.close();
});

const operations = Object.entries(declaring.paths).flatMap(([path, item]) =>
  (["get", "post", "put", "patch", "delete"] as const)
    .filter((method) => item[method] !== undefined && path.includes("{"))
    .map((method) => ({ method, path, operationId: item[method]!.operationId ?? "" })),
);

it("has a plausible body for every write that reads a JSON body", () => {
  const bodied = Object.values(declaring.paths).flatMap((item) =>
    (["post", "put", "patch", "delete"] as const)
      .map((method) => item[method])
      .filter((operation) => {
        const body = operation?.requestBody;
        return body !== undefined && "content" in body && "application/json" in body.content;
      })
      .map((operation) => operation!.operationId ?? ""),
  );
  const webhooks = ["receiveStripeWebhook", "receiveClerkWebhook", "receiveRecallWebhook"];
  expect(bodied.filter((id) => !webhooks.includes(id)).sort()).toEqual(
    Object.keys(PLAUSIBLE_BODIES).sort(),
  );
});

describe.each(operations)("$method $path", ({ method, path, operationId }) => {
  it("answers about each state of the organization's resources with a status it documents", async () => {
    for (const [state, id] of await makeStates()) {
      recall.reset();
      const url = path.replace(/\{[^}]+\}/g, id);
      let req = request(server)[method](url).set(headers);
      const body = PLAUSIBLE_BODIES[operationId];
      if (body !== undefined) req = req.send(body as object);
      const res = await req;
      expect([state, res.status]).not.toEqual([state, 500]);
    }
  });
});

it("probes every operation with a path parameter", () => {
  expect(operations.length).toBeGreaterThanOrEqual(15);
});
