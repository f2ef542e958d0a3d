import type { Server } from "node:http";
import { createMeeting as createMeetingRow, uniqueSuffix } from "@zigznote/database/testing";
import request from "supertest";
import { API_KEY_MAX_LIFETIME_DAYS } from "../../src/identity";
import {
  authHeaderFor,
  platformAdminHeadersFor,
  signClerkToken,
  type AuthenticatedCaller,
} from "../support/auth";
import { startFakeRecall, type FakeRecall } from "../support/fakes/recallServer";
import { createTestApp, type TestApp } from "../support/helpers";
import { botStatusEvent, closeServer, listen, postRecallEvent } from "../support/recallEvents";
import { organizationRowSnapshot } from "../support/rowSnapshot";
import { newSvixSecret, svixHeaders } from "../support/webhookSigning";

/**
 * Hostile input (issue 11): what a caller or a provider sends that the API must refuse with a
 * clear 400, or make safe, and never answer with a 500.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
const recallSecret = newSvixSecret();
const clerkSecret = newSvixSecret();
let recall: FakeRecall;
let testApp: TestApp;
let server: Server;

beforeAll(async () => {
  recall = await startFakeRecall();
  testApp = createTestApp({
    env: {
      RECALL_API_BASE_URL: recall.baseUrl,
      RECALL_API_KEY: recall.apiKey,
      RECALL_WEBHOOK_SECRET: recallSecret,
      CLERK_WEBHOOK_SECRET: clerkSecret,
    },
  });
  server = (await listen(testApp.app)).server;
});
afterAll(async () => {
  await testApp.ctx.webhooks.idle();
  await closeServer(server);
  await recall.close();
  await testApp.close();
});

const db = () => testApp.ctx.db;

let counter = 0;
function meetUrl(): string {
  counter += 1;
  const letters = (n: number, width: number) =>
    Array.from({ length: width }, (_, i) =>
      String.fromCharCode(97 + (Math.floor(n / 26 ** i) % 26)),
    ).join("");
  return `https://meet.google.com/${letters(Date.now() % 17576, 3)}-${letters(counter, 4)}-xyz`;
}

async function createMeeting(caller: AuthenticatedCaller, meetingUrl = meetUrl()) {
  const response = await request(server)
    .post("/api/v1/meetings")
    .set(caller.headers)
    .send({ title: "Weekly sync", meetingUrl });
  expect(response.status).toBe(201);
  return response.body as { id: string; meetingUrl: string };
}

/** Starts the meeting's bot and checks Recall was given the canonical Google Meet link. */
async function expectBotSentToCanonicalMeetLink(
  caller: AuthenticatedCaller,
  meetingId: string,
  code: string,
): Promise<void> {
  const bot = await request(server)
    .post(`/api/v1/meetings/${meetingId}/bot`)
    .set(caller.headers)
    .send({});
  expect(bot.status).toBe(201);
  expect(lastRecallCreate().meeting_url).toBe(`https://meet.google.com/${code}`);
}

function lastRecallCreate(): { meeting_url: string; bot_name: string } {
  const creates = recall.requestsTo("POST", "/api/v1/bot/");
  return creates[creates.length - 1]!.body as { meeting_url: string; bot_name: string };
}

describe("text PostgreSQL cannot store (U+0000, lone surrogates)", () => {
  type Case = {
    name: string;
    method: "post" | "patch";
    path: (meetingId: string) => string;
    body: Record<string, unknown>;
    field: string;
  };
  const meet = "https://meet.google.com/abc-defg-hij";
  const cases: Case[] = [
    {
      name: "POST /meetings title",
      method: "post",
      path: () => "/api/v1/meetings",
      body: { title: "a\u0000b", meetingUrl: meet },
      field: "title",
    },
    {
      name: "POST /meetings meetingUrl",
      method: "post",
      path: () => "/api/v1/meetings",
      body: { title: "x", meetingUrl: `${meet}\u0000` },
      field: "meetingUrl",
    },
    {
      name: "POST /meetings title with a lone surrogate",
      method: "post",
      path: () => "/api/v1/meetings",
      body: { title: "a\uD800b", meetingUrl: meet },
      field: "title",
    },
    {
      name: "PATCH /meetings/:id title",
      method: "patch",
      path: (id) => `/api/v1/meetings/${id}`,
      body: { title: "a\u0000b" },
      field: "title",
    },
    {
      name: "PATCH /meetings/:id meetingUrl with a lone low surrogate",
      method: "patch",
      path: (id) => `/api/v1/meetings/${id}`,
      body: { meetingUrl: `${meet}?x=\uDC00` },
      field: "meetingUrl",
    },
    {
      name: "POST /api-keys name",
      method: "post",
      path: () => "/api/v1/api-keys",
      body: { name: "a\u0000b", scopes: ["meetings:read"] },
      field: "name",
    },
    {
      name: "POST /api-keys scopes item",
      method: "post",
      path: () => "/api/v1/api-keys",
      body: { name: "ci", scopes: ["meetings:read\u0000"] },
      field: "scopes.0",
    },
    {
      name: "POST /meetings/:id/bot botName",
      method: "post",
      path: (id) => `/api/v1/meetings/${id}/bot`,
      body: { botName: "a\u0000b" },
      field: "botName",
    },
    {
      name: "POST /billing/subscription planSlug",
      method: "post",
      path: () => "/api/v1/billing/subscription",
      body: { planSlug: "pro\u0000" },
      field: "planSlug",
    },
    {
      name: "a field name",
      method: "post",
      path: () => "/api/v1/meetings",
      body: { title: "x", meetingUrl: meet, "ti\u0000tle": "y" },
      field: "ti\\u0000tle",
    },
  ];

  it.each(cases)(
    "$name: 400 VALIDATION_ERROR naming the field, nothing written",
    async ({ method, path, body, field }) => {
      const caller = await authHeaderFor(testApp);
      const meeting = await createMeeting(caller);
      const before = await organizationRowSnapshot(db(), caller.organizationId);

      const agent = request(server);
      const response = await agent[method](path(meeting.id)).set(caller.headers).send(body);

      expect(response.status).toBe(400);
      expect(response.body.error.code).toBe("VALIDATION_ERROR");
      expect(response.body.error.details.fields).toEqual([
        expect.objectContaining({ path: field, code: "invalid_characters" }),
      ]);
      expect(await organizationRowSnapshot(db(), caller.organizationId)).toEqual(before);
      await testApp.ctx.webhooks.idle();
    },
  );

  it("refuses a query parameter holding U+0000 the same way", async () => {
    const caller = await authHeaderFor(testApp);
    const response = await request(server)
      .get("/api/v1/meetings?cursor=abc%00def")
      .set(caller.headers);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: "VALIDATION_ERROR",
      details: { fields: [{ path: "cursor", code: "invalid_characters" }] },
    });
  });

  it("answers 400 for a path parameter that is not valid percent-encoded UTF-8", async () => {
    const caller = await authHeaderFor(testApp);
    const response = await request(server).get("/api/v1/meetings/%ED%A0%80").set(caller.headers);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe("INVALID_URL_ENCODING");
  });
});

describe("text from providers is stored with U+FFFD in place of what PostgreSQL refuses", () => {
  async function postClerkEvent(type: string, data: Record<string, unknown>) {
    const body = JSON.stringify({ type, object: "event", timestamp: Date.now(), data });
    return request(server)
      .post("/webhooks/clerk")
      .set(svixHeaders(clerkSecret, `msg_${uniqueSuffix()}`, body))
      .send(body);
  }

  it("applies a Clerk organization and user whose names hold U+0000 and a lone surrogate", async () => {
    const suffix = uniqueSuffix();
    const organization = await postClerkEvent("organization.created", {
      id: `org_${suffix}`,
      object: "organization",
      name: "Acme\u0000 Inc",
      created_at: Date.now(),
      updated_at: Date.now(),
    });
    expect(organization.status).toBe(200);
    expect(
      (await db().organization.findUniqueOrThrow({ where: { clerkId: `org_${suffix}` } })).name,
    ).toBe("Acme\uFFFD Inc");

    const user = await postClerkEvent("user.created", {
      id: `user_${suffix}`,
      first_name: "Ada\u0000",
      last_name: "Love\uD800lace",
      email_addresses: [],
      updated_at: Date.now(),
    });
    expect(user.status).toBe(200);
    expect(
      await db().user.findUniqueOrThrow({
        where: { clerkId: `user_${suffix}` },
        select: { firstName: true, lastName: true },
      }),
    ).toEqual({ firstName: "Ada\uFFFD", lastName: "Love\uFFFDlace" });
  });

  it("applies a Recall status whose sub code holds U+0000", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeeting(caller);
    const created = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers)
      .send({});
    expect(created.status).toBe(201);
    const bot = await db().bot.findUniqueOrThrow({ where: { id: created.body.id } });

    const response = await postRecallEvent(
      server,
      recallSecret,
      botStatusEvent({
        recallBotId: bot.recallBotId!,
        code: "in_call_recording",
        subCode: "odd\u0000code",
        at: new Date(),
        metadata: { botId: bot.id },
      }),
    );
    expect(response.status).toBe(200);
    expect(await db().bot.findUniqueOrThrow({ where: { id: bot.id } })).toMatchObject({
      status: "in_call_recording",
      subCode: "odd\uFFFDcode",
    });
  });

  it("releases the reservation when Recall refuses a bot with U+0000 in its error", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeeting(caller);
    recall.failNext(
      { status: 400, body: { meeting_url: ["Bad\u0000 link"] } },
      { method: "POST", path: /^\/api\/v1\/bot\/?$/ },
    );
    const refused = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers)
      .send({});
    expect(refused.status).toBe(502);
    const bots = await db().bot.findMany({ where: { meetingId: meeting.id } });
    expect(bots).toHaveLength(1);
    expect(bots[0]!.status).toBe("failed");
    expect(bots[0]!.terminalReason).toContain("Bad\uFFFD link");
  });

  it("provisions from a session token whose organization slug holds U+0000", async () => {
    const suffix = uniqueSuffix();
    const token = signClerkToken({
      userId: `user_${suffix}`,
      orgId: `org_${suffix}`,
      orgSlug: "acme\u0000",
    });
    const response = await request(server)
      .get("/api/v1/me")
      .set("Authorization", `Bearer ${token}`);
    expect(response.status).toBe(200);
    expect(response.body.organization.name).toBe("acme\uFFFD");
  });
});

describe("pagination cursors", () => {
  const uuid = "2b1c7f0e-8a4e-4d38-9b0e-1f2a3b4c5d6e";
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

  it.each([
    ["the earliest JavaScript date", encode(["-271821-04-20T00:00:00.000Z", uuid])],
    ["the latest JavaScript date", encode(["+275760-09-13T00:00:00.000Z", uuid])],
    ["a date that does not exist", encode(["2026-02-30T00:00:00.000Z", uuid])],
    ["a date in another format", encode(["2026-01-01", uuid])],
    ["an id that is not a UUID", encode(["2026-01-01T00:00:00.000Z", "1"])],
    ["three items", encode(["2026-01-01T00:00:00.000Z", uuid, 1])],
    ["not JSON", "bm90LWEtY3Vyc29y"],
    ["not base64url JSON at all", "nope"],
  ])("refuses %s with 400 INVALID_CURSOR", async (_name, cursor) => {
    const caller = await authHeaderFor(testApp);
    const response = await request(server)
      .get("/api/v1/meetings")
      .query({ cursor })
      .set(caller.headers);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: "INVALID_CURSOR",
      details: { fields: [{ path: "cursor", code: "invalid_cursor" }] },
    });
  });

  // Every list that pages with a cursor of ours (invoices page with Stripe's): the cursor's kind
  // (null for the meetings' cursor, which has none) and what its sort key is; an id follows it.
  const lists: {
    name: string;
    path: string;
    query: Record<string, string>;
    kind: string | null;
    sortKey: "time" | "text";
  }[] = [
    { name: "meetings", path: "/api/v1/meetings", query: {}, kind: null, sortKey: "time" },
    {
      name: "notices",
      path: "/api/v1/notices",
      query: {},
      kind: "notice",
      sortKey: "time",
    },
    {
      name: "audit log",
      path: "/api/v1/admin/audit-log",
      query: {},
      kind: "a",
      sortKey: "time",
    },
    {
      name: "job runs",
      path: "/api/v1/admin/job-runs",
      query: {},
      kind: "j",
      sortKey: "time",
    },
    {
      name: "violations by detection",
      path: "/api/v1/admin/violations",
      query: { sort: "detectedAt" },
      kind: "v:d",
      sortKey: "time",
    },
    {
      name: "violations by grace end",
      path: "/api/v1/admin/violations",
      query: { sort: "graceEndsAt" },
      kind: "v:g",
      sortKey: "time",
    },
    {
      name: "organizations by creation",
      path: "/api/v1/admin/organizations",
      query: {},
      kind: "o:c",
      sortKey: "time",
    },
    {
      name: "organizations by name",
      path: "/api/v1/admin/organizations",
      query: { q: "a" },
      kind: "o:n",
      sortKey: "text",
    },
  ];
  const timeLists = lists.filter((list) => list.sortKey === "time");
  const textLists = lists.filter((list) => list.sortKey === "text");
  const cursorOf = (list: (typeof lists)[number], first: string) =>
    encode(list.kind === null ? [first, uuid] : [list.kind, first, uuid]);

  async function getPage(list: (typeof lists)[number], cursor: string) {
    const caller = await authHeaderFor(testApp);
    return request(server)
      .get(list.path)
      .query({ ...list.query, cursor })
      .set(platformAdminHeadersFor(caller));
  }

  it.each(
    timeLists.flatMap((list) =>
      [
        "0000-01-01T00:00:00.000Z",
        "0000-12-31T23:59:59.999Z",
        "2026-01-01T24:00:00.000Z",
        "2026-01-01T00:00:60.000Z",
      ].map((time) => [list.name, time, list] as const),
    ),
  )("refuses a cursor of %s at %s with 400 INVALID_CURSOR", async (_name, time, list) => {
    const response = await getPage(list, cursorOf(list, time));
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: "INVALID_CURSOR",
      details: { fields: [{ path: "cursor", code: "invalid_cursor" }] },
    });
  });

  it.each(
    timeLists.flatMap((list) =>
      ["0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"].map(
        (time) => [list.name, time, list] as const,
      ),
    ),
  )("pages from a cursor of %s at %s, the edge of what it accepts", async (_name, time, list) => {
    const response = await getPage(list, cursorOf(list, time));
    expect(response.status).toBe(200);
  });

  it.each(
    textLists.flatMap((list) =>
      [
        ["U+0000", "a\u0000b"],
        ["a lone high surrogate", "a\ud800b"],
        ["a lone low surrogate", "\udc00"],
      ].map(([what, text]) => [list.name, what, text!, list] as const),
    ),
  )(
    "refuses a cursor of %s holding %s with 400 INVALID_CURSOR",
    async (_name, _what, text, list) => {
      const response = await getPage(list, cursorOf(list, text));
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({
        code: "INVALID_CURSOR",
        details: { fields: [{ path: "cursor", code: "invalid_cursor" }] },
      });
    },
  );

  it("still pages with the cursors it hands out", async () => {
    const caller = await authHeaderFor(testApp);
    for (let i = 0; i < 3; i += 1) await createMeeting(caller);
    const first = await request(server).get("/api/v1/meetings?limit=2").set(caller.headers);
    const second = await request(server)
      .get("/api/v1/meetings")
      .query({ limit: 2, cursor: first.body.nextCursor })
      .set(caller.headers);
    expect(second.status).toBe(200);
    expect(second.body.data).toHaveLength(1);
  });
});

describe("meeting links", () => {
  it("stores, shows and sends Recall the canonical link (https, no port)", async () => {
    const caller = await authHeaderFor(testApp);
    const code = meetUrl().split("/").pop()!;
    const meeting = await createMeeting(caller, `http://meet.google.com:6379/${code}`);
    expect(meeting.meetingUrl).toBe(`https://meet.google.com/${code}`);
    expect((await db().meeting.findUniqueOrThrow({ where: { id: meeting.id } })).meetingUrl).toBe(
      `https://meet.google.com/${code}`,
    );

    await expectBotSentToCanonicalMeetLink(caller, meeting.id, code);
  });

  it("stores the canonical link of a PATCH (no scheme, tracking parameters dropped)", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeeting(caller);
    const response = await request(server)
      .patch(`/api/v1/meetings/${meeting.id}`)
      .set(caller.headers)
      .send({ meetingUrl: "US02WEB.zoom.us:443/wc/850123456/join?pwd=s3cret&utm_source=x" });
    expect(response.status).toBe(200);
    expect(response.body.meetingUrl).toBe("https://us02web.zoom.us/j/850123456?pwd=s3cret");
  });

  it("refuses a link whose path is not a meeting path of its platform", async () => {
    const caller = await authHeaderFor(testApp);
    const before = await organizationRowSnapshot(db(), caller.organizationId);
    for (const meetingUrl of [
      "https://acme.webex.com:8080/../../admin",
      "https://acme.webex.com/admin/settings",
      "https://zoom.us/j/85012345678/../../../account",
    ]) {
      const response = await request(server)
        .post("/api/v1/meetings")
        .set(caller.headers)
        .send({ title: "x", meetingUrl });
      expect(response.status).toBe(400);
      expect(response.body.error.details.fields[0]).toMatchObject({
        path: "meetingUrl",
        code: "invalid_meeting_url",
      });
    }
    expect(await organizationRowSnapshot(db(), caller.organizationId)).toEqual(before);
  });

  it("refuses a link whose escapes decode to U+0000 (it never reaches the normalized link)", async () => {
    const caller = await authHeaderFor(testApp);
    const response = await request(server)
      .post("/api/v1/meetings")
      .set(caller.headers)
      .send({ title: "x", meetingUrl: "https://acme.webex.com/meet/a%00b" });
    expect(response.status).toBe(400);
    expect(response.body.error.details.fields[0].path).toBe("meetingUrl");
  });

  it("sends Recall the canonical link of a meeting stored before links were canonical", async () => {
    const caller = await authHeaderFor(testApp);
    const code = meetUrl().split("/").pop()!;
    const meeting = await createMeetingRow(db(), {
      organizationId: caller.organizationId,
      meetingUrl: `http://meet.google.com:6379/${code}`,
      normalizedMeetingUrl: `google_meet:${code}`,
      platform: "google_meet",
    });
    await expectBotSentToCanonicalMeetLink(caller, meeting.id, code);
  });

  it("refuses to send a bot to a stored link that is not a meeting link (409, Recall not called)", async () => {
    const caller = await authHeaderFor(testApp);
    const meeting = await createMeetingRow(db(), {
      organizationId: caller.organizationId,
      meetingUrl: "https://acme.webex.com:8080/../../admin",
      normalizedMeetingUrl: `webex:acme.webex.com/admin-${uniqueSuffix()}`,
      platform: "webex",
    });
    const creates = recall.requestsTo("POST", "/api/v1/bot/").length;
    const response = await request(server)
      .post(`/api/v1/meetings/${meeting.id}/bot`)
      .set(caller.headers)
      .send({});
    expect(response.status).toBe(409);
    expect(response.body.error.code).toBe("MEETING_URL_NOT_SUPPORTED");
    expect(recall.requestsTo("POST", "/api/v1/bot/")).toHaveLength(creates);
    const bots = await db().bot.findMany({ where: { meetingId: meeting.id } });
    expect(bots.map((bot) => bot.status)).toEqual(["failed"]);
  });
});

describe("API key expiry", () => {
  async function createKey(caller: AuthenticatedCaller, expiresAt: Date) {
    return request(server)
      .post("/api/v1/api-keys")
      .set(caller.headers)
      .send({ name: "ci", scopes: ["meetings:read"], expiresAt: expiresAt.toISOString() });
  }

  it.each([
    ["in the past", -DAY_MS, /in the future/],
    ["now", 0, /in the future/],
    [
      `beyond ${API_KEY_MAX_LIFETIME_DAYS} days`,
      (API_KEY_MAX_LIFETIME_DAYS + 1) * DAY_MS,
      /at most/,
    ],
  ])("refuses an expiry %s (400, no key)", async (_name, offsetMs, message) => {
    const caller = await authHeaderFor(testApp);
    const response = await createKey(caller, new Date(Date.now() + offsetMs));
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({
      code: "VALIDATION_ERROR",
      details: { fields: [{ path: "expiresAt", code: "invalid_expiry" }] },
    });
    expect(response.body.error.message).toMatch(message);
    expect(await db().apiKey.count({ where: { organizationId: caller.organizationId } })).toBe(0);
  });

  it("creates a key that expires in the future, within the limit", async () => {
    const caller = await authHeaderFor(testApp);
    const expiresAt = new Date(Date.now() + (API_KEY_MAX_LIFETIME_DAYS - 1) * DAY_MS);
    const response = await createKey(caller, expiresAt);
    expect(response.status).toBe(201);
    expect(response.body.expiresAt).toBe(expiresAt.toISOString());
  });
});
