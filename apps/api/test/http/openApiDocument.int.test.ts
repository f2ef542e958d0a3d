import { ERROR_CODES, isErrorCode } from "@zigznote/shared";
import { appOpenApiDocument } from "../../src/app";
import { AUTHENTICATION_CODES } from "../../src/identity";
import { buildOpenApiDocument } from "../../src/http/openapi";
import { defineRoute } from "../../src/http/route";
import { SCOPES } from "../../src/http/scopes";
import { createTestApp, type TestApp } from "../support/helpers";

/** What a client author reads in /openapi.json and /docs (issue 16, item 7). */

interface JsonBodySchema {
  $ref?: string;
  additionalProperties?: unknown;
}

interface Operation {
  operationId?: string;
  tags?: string[];
  description?: string;
  security?: unknown[];
  parameters?: { in: string; name: string }[];
  "x-required-scope"?: string;
  "x-required-role"?: string;
  requestBody?: { content: Record<string, { schema?: JsonBodySchema }> };
  responses: Record<
    string,
    {
      description: string;
      headers?: Record<string, unknown>;
      content?: Record<
        string,
        {
          schema?: { properties?: { error?: { properties?: { code?: { enum?: string[] } } } } };
          examples?: Record<string, { value: unknown }>;
        }
      >;
    }
  >;
}

type Document = ReturnType<typeof appOpenApiDocument>;

function operations(document: Document): [string, Operation][] {
  return Object.entries(document.paths ?? {}).flatMap(([path, item]) =>
    Object.entries(item as Record<string, Operation>).map(
      ([method, operation]) =>
        [`${method.toUpperCase()} ${path}`, operation] as [string, Operation],
    ),
  );
}

function codesOf(operation: Operation, status: number): string[] {
  return (
    operation.responses[String(status)]?.content?.["application/json"]?.schema?.properties?.error
      ?.properties?.code?.enum ?? []
  );
}

describe("the OpenAPI document, for a client author", () => {
  let testApp: TestApp;
  let document: Document;
  let byName: Map<string, Operation>;
  beforeAll(() => {
    testApp = createTestApp();
    document = appOpenApiDocument(testApp.ctx.routes);
    byName = new Map(operations(document));
  });
  afterAll(async () => {
    await testApp.close();
  });

  it("gives every operation a unique camelCase operationId and a described tag", () => {
    const ids = operations(document).map(([, operation]) => operation.operationId);
    expect(ids.length).toBeGreaterThan(20);
    for (const id of ids) expect(id).toMatch(/^[a-z][A-Za-z]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    const described = new Map((document.tags ?? []).map((tag) => [tag.name, tag.description]));
    for (const [name, operation] of operations(document)) {
      expect([name, operation.tags?.length]).toEqual([name, 1]);
      expect([name, described.get(operation.tags![0]!)]).toEqual([name, expect.any(String)]);
    }
    expect(new Set(operations(document).map(([, op]) => op.tags![0])).size).toBeGreaterThan(5);
  });

  it("states each operation's required scope or role, as the guards check them", () => {
    const meetings = byName.get("POST /api/v1/meetings")!;
    expect(meetings["x-required-scope"]).toBe("meetings:write");
    expect(meetings.description).toContain("Requires the `meetings:write` scope");
    expect(byName.get("GET /api/v1/billing/plans")!["x-required-scope"]).toBe("billing:read");
    expect(byName.get("GET /api/v1/meetings/{id}/bot")!["x-required-scope"]).toBe("bots:read");
    const keys = byName.get("POST /api/v1/api-keys")!;
    expect(keys["x-required-role"]).toBe("admin");
    expect(keys.description).toContain("API keys are refused");
    for (const [name, operation] of operations(document)) {
      if (!operation.security) continue;
      const scope = operation["x-required-scope"];
      if (scope !== undefined)
        expect([name, SCOPES]).toEqual([name, expect.arrayContaining([scope])]);
      // Every authenticated operation says what lets a caller in.
      expect([name, operation.description]).toEqual([name, expect.stringMatching(/\S/)]);
    }
  });

  it("lists the codes each error status can carry, each one a known code with its meaning", () => {
    const createBot = byName.get("POST /api/v1/meetings/{id}/bot")!;
    expect(codesOf(createBot, 409)).toEqual(
      expect.arrayContaining(["BOT_ALREADY_ACTIVE", "BOT_ALREADY_ACTIVE_FOR_URL"]),
    );
    expect(codesOf(createBot, 403)).toEqual(
      expect.arrayContaining(["INSUFFICIENT_SCOPE", "PLAN_LIMIT_MEETINGS", "PLAN_LIMIT_STORAGE"]),
    );
    expect(codesOf(createBot, 402)).toEqual(["SUBSCRIPTION_SUSPENDED", "PAYMENT_DISPUTED"]);
    expect(createBot.responses["409"]!.description).toContain(
      `\`BOT_ALREADY_ACTIVE\`: ${ERROR_CODES.BOT_ALREADY_ACTIVE.description}`,
    );
    expect(codesOf(byName.get("PATCH /api/v1/meetings/{id}")!, 409)).toEqual([
      "IDEMPOTENCY_KEY_IN_USE",
      "MEETING_HAS_ACTIVE_BOT",
      "CONFLICT",
    ]);
    expect(codesOf(byName.get("GET /api/v1/meetings")!, 400)).toEqual(
      expect.arrayContaining(["VALIDATION_ERROR", "INVALID_CURSOR"]),
    );
    // A route that reads no body does not claim body errors.
    expect(byName.get("GET /api/v1/meetings/{id}")!.responses["413"]).toBeUndefined();
    for (const [name, operation] of operations(document)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400) continue;
        const codes = codesOf(operation, Number(status));
        if (name.startsWith("GET /health") && status === "503") continue; // its own body
        expect([name, status, codes.length > 0]).toEqual([name, status, true]);
        // One example body per code: the standard shape with that code (no made-up fields).
        const examples = response.content?.["application/json"]?.examples;
        if (!(name.startsWith("GET /health") && status === "503")) {
          expect([name, status, Object.keys(examples ?? {})]).toEqual([name, status, codes]);
        }
        for (const code of codes) {
          expect([name, code, isErrorCode(code)]).toEqual([name, code, true]);
          expect(response.description).toContain(`\`${code}\``);
          if (examples) {
            expect(examples[code]!.value).toEqual({
              error: { code, message: expect.any(String), details: expect.any(Object) },
              requestId: expect.any(String),
            });
          }
        }
      }
      if (operation.security) {
        expect([name, codesOf(operation, 401)]).toEqual([
          name,
          expect.arrayContaining(
            AUTHENTICATION_CODES.filter((code) => ERROR_CODES[code].status === 401),
          ),
        ]);
      }
    }
  });

  it("documents the download's Range request header and its response headers", () => {
    const download = byName.get("GET /api/v1/meetings/{id}/recording")!;
    const headers = (download.parameters ?? []).filter((p) => p.in === "header").map((p) => p.name);
    expect(headers).toEqual(expect.arrayContaining(["range", "if-none-match", "if-range"]));
    expect(Object.keys(download.responses["200"]!.headers ?? {})).toEqual(
      expect.arrayContaining(["ETag", "Accept-Ranges", "Content-Length"]),
    );
    expect(Object.keys(download.responses["206"]!.headers ?? {})).toContain("Content-Range");
    const rateLimit = ["RateLimit-Policy", "RateLimit"];
    expect(Object.keys(download.responses["304"]!.headers ?? {})).toEqual([...rateLimit, "ETag"]);
    expect(Object.keys(download.responses["416"]!.headers ?? {})).toEqual([
      ...rateLimit,
      "Content-Range",
    ]);
    expect(Object.keys(byName.get("GET /api/v1/me")!.responses["429"]!.headers ?? {})).toEqual([
      ...rateLimit,
      "Retry-After",
    ]);
    expect(Object.keys(byName.get("GET /api/v1/me")!.responses["503"]!.headers ?? {})).toEqual([
      ...rateLimit,
      "Retry-After",
    ]);
    expect(byName.get("GET /health")!.responses["200"]!.headers).toBeUndefined();
  });

  it("lists Idempotency-Key, its three codes and Idempotent-Replayed on every write under /api/v1", () => {
    let writes = 0;
    for (const [name, operation] of operations(document)) {
      const [method, path] = name.split(" ") as [string, string];
      const isWrite = ["POST", "PATCH", "DELETE"].includes(method) && path.startsWith("/api/v1/");
      const headers = (operation.parameters ?? []).filter((p) => p.in === "header");
      expect([name, headers.some((p) => p.name === "Idempotency-Key")]).toEqual([name, isWrite]);
      if (!isWrite) continue;
      writes += 1;
      expect([name, codesOf(operation, 400)]).toEqual([
        name,
        expect.arrayContaining(["INVALID_IDEMPOTENCY_KEY"]),
      ]);
      expect([name, codesOf(operation, 409)]).toEqual([
        name,
        expect.arrayContaining(["IDEMPOTENCY_KEY_IN_USE"]),
      ]);
      expect([name, codesOf(operation, 422)]).toEqual([name, ["IDEMPOTENCY_KEY_REUSED"]]);
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) >= 400) continue;
        expect([name, status, Object.keys(response.headers ?? {})]).toEqual([
          name,
          status,
          expect.arrayContaining(["Idempotent-Replayed", "RateLimit-Policy", "RateLimit"]),
        ]);
      }
    }
    expect(writes).toBeGreaterThanOrEqual(18);
  });

  it("declares Idempotent-Replayed on the refusals a write keeps and replays, not on those it never keeps", () => {
    const byName = new Map(operations(document));
    const headersOf = (name: string, status: number) =>
      Object.keys(byName.get(name)!.responses[String(status)]!.headers ?? {});
    // The handler's refusals: a DELETE of an unknown meeting (404), a second bot (409).
    expect(headersOf("DELETE /api/v1/meetings/{id}", 404)).toContain("Idempotent-Replayed");
    expect(headersOf("POST /api/v1/meetings/{id}/bot", 409)).toContain("Idempotent-Replayed");
    // Never kept: refused input, credentials, the key's own refusals, billing's write guard.
    for (const status of [400, 401, 422]) {
      expect(headersOf("DELETE /api/v1/meetings/{id}", status)).not.toContain(
        "Idempotent-Replayed",
      );
    }
    expect(headersOf("POST /api/v1/meetings/{id}/bot", 402)).not.toContain("Idempotent-Replayed");
    // Nor on a read.
    expect(headersOf("GET /api/v1/meetings/{id}", 404)).not.toContain("Idempotent-Replayed");
  });

  it("refuses unknown fields in every JSON body under /api/v1 (a typo is not ignored)", () => {
    const schemas = (document.components?.schemas ?? {}) as Record<string, JsonBodySchema>;
    let bodies = 0;
    for (const [name, operation] of operations(document)) {
      const body = operation.requestBody?.content["application/json"]?.schema;
      if (!name.split(" ")[1]!.startsWith("/api/v1/") || body === undefined) continue;
      bodies += 1;
      const schema = body.$ref ? schemas[body.$ref.replace("#/components/schemas/", "")] : body;
      expect([name, schema?.additionalProperties]).toEqual([name, false]);
    }
    expect(bodies).toBeGreaterThanOrEqual(16);
  });

  it("documents the null that PATCH /api/v1/meetings/{id} accepts to clear startTime and endTime", () => {
    const schemas = (document.components?.schemas ?? {}) as Record<
      string,
      { properties: Record<string, { type?: string; format?: string; nullable?: boolean }> }
    >;
    for (const field of ["startTime", "endTime"]) {
      expect(schemas.UpdateMeeting!.properties[field]).toMatchObject({
        type: "string",
        format: "date-time",
        nullable: true,
      });
      // Creating takes a time or nothing, not null.
      expect(schemas.CreateMeeting!.properties[field]!.nullable).toBeUndefined();
    }
  });

  it("opens with an authentication guide whose scope table is the guards' scope list", () => {
    const guide = document.info.description ?? "";
    expect(guide).toContain("## Authentication");
    expect(guide).toContain("Authorization: Bearer <credential>");
    expect(guide).toContain("dev:token");
    for (const scope of SCOPES) expect(guide).toMatch(new RegExp(`\\| \`${scope}\` \\| yes \\|`));
    expect(guide).toContain("| `billing:write` | yes | no |");
    expect(guide).toContain("## Errors");
  });

  it("refuses to build a document where two operations share an operationId", () => {
    const route = (path: string) =>
      defineRoute({
        method: "get",
        path,
        operationId: "getThing",
        tag: "Things",
        summary: "A thing",
        auth: "none",
        responses: { 204: { description: "Nothing" } },
        handler() {
          return { status: 204 };
        },
      });
    expect(() =>
      buildOpenApiDocument([route("/a"), route("/b")], "test", {
        authenticationCodes: AUTHENTICATION_CODES,
      }),
    ).toThrow('GET /b: operationId "getThing" is missing or taken');
  });
});
