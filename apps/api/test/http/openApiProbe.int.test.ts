import { randomUUID } from "node:crypto";
import request from "supertest";
import { appOpenApiDocument } from "../../src/app";
import { apiKeyHeaderFor, authHeaderFor } from "../support/auth";
import { createTestApp, type TestApp } from "../support/helpers";

/**
 * Every operation of the document, asked what careless or hostile clients send: no credentials,
 * a member's session or a narrow API key, a malformed or unknown path id, odd query parameters,
 * a body that is not JSON, of another type, or over the limit. Each answer is
 * checked against the document by the hook every test file runs (test/support/setupOpenApi.ts), so an
 * operation that answers one of these with a status it does not list fails here even when no
 * feature test asks it. None may answer 500.
 */

const JSON_BODY_LIMIT_BYTES = 2048;

const testApp: TestApp = createTestApp({
  env: { JSON_BODY_LIMIT: `${JSON_BODY_LIMIT_BYTES}b`, WEBHOOK_BODY_LIMIT: "2kb" },
});
const document = appOpenApiDocument(testApp.ctx.routes);

type Caller = "nobody" | "admin" | "member" | "readOnlyKey";

interface Probe {
  name: string;
  caller: Caller;
  /** What fills `{id}` and the other path parameters. */
  pathValue: () => string;
  query?: string;
  body?: { type: string; data: string };
}

const PROBES: Probe[] = [
  { name: "without credentials", caller: "nobody", pathValue: randomUUID },
  { name: "from a member", caller: "member", pathValue: randomUUID },
  { name: "with a read-only API key", caller: "readOnlyKey", pathValue: randomUUID },
  { name: "with a malformed path id", caller: "admin", pathValue: () => "not-a-uuid" },
  { name: "for an unknown resource", caller: "admin", pathValue: randomUUID },
  {
    name: "with query parameters out of range",
    caller: "admin",
    pathValue: randomUUID,
    query: "limit=-1&cursor=%25%25&status=nope&unknown=1",
  },
  {
    name: "with a body that is not JSON",
    caller: "admin",
    pathValue: randomUUID,
    body: { type: "application/json", data: '{"title": ' },
  },
  {
    name: "with a body of another type",
    caller: "admin",
    pathValue: randomUUID,
    body: { type: "text/plain", data: "title=x" },
  },
  {
    name: "with a body over the limit",
    caller: "admin",
    pathValue: randomUUID,
    body: {
      type: "application/json",
      data: JSON.stringify({ title: "x".repeat(JSON_BODY_LIMIT_BYTES * 2) }),
    },
  },
];

const operations = Object.entries(document.paths).flatMap(([path, item]) =>
  (["get", "post", "put", "patch", "delete"] as const)
    .filter((method) => item[method] !== undefined)
    .map((method) => ({ method, path })),
);

const headers: Partial<Record<Caller, { Authorization: string }>> = {};
beforeAll(async () => {
  const admin = await authHeaderFor(testApp, { role: "admin" });
  const { organizationId } = admin;
  headers.admin = admin.headers;
  headers.member = (await authHeaderFor(testApp, { role: "member", organizationId })).headers;
  headers.readOnlyKey = (
    await apiKeyHeaderFor(testApp, { scopes: ["meetings:read"], organizationId })
  ).headers;
});
afterAll(async () => {
  await testApp.close();
});

describe.each(operations)("$method $path", ({ method, path }) => {
  it.each(PROBES)("answers a request $name with a status the document lists", async (probe) => {
    const url = path.replace(/\{[^}]+\}/g, probe.pathValue());
    let req = request(testApp.app)[method](probe.query ? `${url}?${probe.query}` : url);
    const callerHeaders = headers[probe.caller];
    if (callerHeaders) req = req.set(callerHeaders);
    if (probe.body) req = req.set("Content-Type", probe.body.type).send(probe.body.data);
    const res = await req;
    expect(res.status).not.toBe(500);
  });
});

it("probes every operation of the document", () => {
  expect(operations.length).toBeGreaterThanOrEqual(25);
});
